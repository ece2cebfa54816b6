#pragma once
// The router's table (the seed's EventRouter): event type -> logical destination topic.
//   FILE_COMPLETED -> qa.requests, QA_PASSED -> deploy.requests,
//   QA_FAILED -> tasks.fix until fix_limit fixes were tried, then the DLQ (qa_failed_max),
//   FILE_FAILED -> the DLQ, UPLOADED / UPLOAD_FAILED / ESCALATED -> progress only.
// Types not in the table go to the DLQ (unknown_event_type).
#include <map>
#include <optional>
#include <string>

#include "agentline/kafka/topic_catalog.h"

namespace agentline::router {

struct Route {
  enum class Kind { kForward, kFix, kDeadLetter, kProgressOnly };
  Kind kind = Kind::kProgressOnly;
  std::string topic;  // physical name, for kForward and kFix
};

class RoutingTable {
 public:
  // JSON: {"routes": {"<TYPE>": "<logical topic>" | "dlq" | ""}, "fix_limit": 3,
  // "plan_fix_limit": 2, "replan_limit": 1, "job_fix_limit": 2}. PLAN_COMPLETED, PLAN_REJECTED
  // and the job checks' events are not routed by the table: they are the planner's
  // (docs/planning.md) and the job check's (docs/qa.md). A route to
  // "tasks.fix" builds a FIX_TASK. Unknown keys, types or topics are errors (std::invalid_argument).
  static RoutingTable parse(const std::string& json_text, const kafka::TopicCatalog& catalog);
  // The file's table, or the built-in default when `path` is empty.
  static RoutingTable load(const std::string& path, const kafka::TopicCatalog& catalog);
  static const char* default_json();

  std::optional<Route> route(const std::string& type) const;
  int fix_limit() const { return fix_limit_; }
  // Plans asked for again after the model's plan failed its checks (then plan_invalid, DLQ).
  int plan_fix_limit() const { return plan_fix_limit_; }
  // Times a planned file at the fix limit goes back to the planner before it is dead-lettered.
  int replan_limit() const { return replan_limit_; }
  // Rounds of fixes a failed job check sends before the files it names are dead-lettered
  // (job_qa_failed).
  int job_fix_limit() const { return job_fix_limit_; }

 private:
  std::map<std::string, Route> routes_;
  int fix_limit_ = 3;
  int plan_fix_limit_ = 2;
  int replan_limit_ = 1;
  int job_fix_limit_ = 2;
};

}  // namespace agentline::router
