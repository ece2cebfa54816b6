#pragma once
// router: reads the events topic (and tasks.submitted, for per-job totals, and the DLQ, so that
// every dead-lettered file shows on its job), forwards each event
// by the routing table, turns QA failures into fix tasks until the fix limit, dead-letters what
// cannot go on, drops redelivered events (by id, within a bounded window), and publishes each
// job's progress to the compacted jobs.progress topic. For a job submitted as a goal it runs the
// planner's loop (docs/planning.md): a rejected plan is asked for again with its errors
// (plan_fix_limit), then dead-lettered as plan_invalid; an accepted plan's files are released
// in dependency order by the DependencyGate; a planned file at the fix limit goes back to the
// planner once (REPLAN_TASK) before it is dead-lettered. Once every file of a planned job has
// ended, the job is checked as a whole (JOB_CHECK_REQUESTED to qa-worker); its files are
// delivered when the job check passes, and a failure sends fixes to the files it names, up to
// job_fix_limit rounds, then dead-letters them as job_qa_failed (docs/qa.md). Thread-safe.
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/topic_catalog.h"
#include "coalescing_publisher.h"
#include "dependency_gate.h"
#include "job_progress.h"
#include "review_rules.h"
#include "routing_table.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace agentline::router {

struct JobCheckOptions {
  bool enabled = true;          // planned jobs are checked as a whole before delivery
  bool deliver_before = false;  // deliver files as they pass; the job check still runs
};

class EventRouter {
 public:
  EventRouter(const kafka::TopicCatalog& catalog, RoutingTable table, prometheus::Registry& registry,
              std::size_t dedup_window = 100000, JobCheckOptions job_checks = JobCheckOptions());

  std::optional<kafka::Failure> handle(const kafka::InboundRecord& record, kafka::Emitter& out);
  JobProgress& progress() { return progress_; }
  // At start, after jobs.plans was read back: a job check recorded as running is asked for
  // again (its request may not have reached Kafka before a crash; qa-worker's second answer for
  // the same round is dropped as a duplicate). Returns how many.
  int resend_job_checks(kafka::Emitter& out);
  // Model reviews (docs/qa.md): a file that passed its checks goes to the reviewers these rules
  // choose (a REVIEW_TASK for dev-fix-worker) before it counts as passed. Off until set.
  void set_reviews(ReviewRules rules) { reviews_ = std::move(rules); }
  DependencyGate& gate() { return gate_; }
  // Job progress through `publisher` (coalesced per key, coalescing_publisher.h) instead of one
  // record per step through the handler's emitter. Set before handling; null: per step.
  void set_progress_publisher(CoalescingPublisher* publisher) { progress_publisher_ = publisher; }
  // Retention (--job-retention): jobs finished and unchanged since `older_than` (ISO 8601) are
  // forgotten, and their keys on jobs.progress and jobs.plans tombstoned (files first), so
  // they leave every reader's memory too. Returns how many jobs.
  int expire_jobs(kafka::Emitter& out, const std::string& older_than);
  // This replica's id, on every progress record it writes (header agentline-origin): reading
  // jobs.progress back, it skips its own records, which it has already applied.
  const std::string& origin() const { return origin_; }

 private:
  std::optional<kafka::Failure> handle_task(const kafka::InboundRecord& record, kafka::Emitter& out);
  // A record on the DLQ (any service's, a retry tier's last step, its own): the file it names
  // ends as dead_lettered on its job, with the reason its headers give; a PLAN_TASK's job shows
  // its plan dead-lettered. Never fails: a DLQ record is not dead-lettered again.
  std::optional<kafka::Failure> handle_dead_letter(const kafka::InboundRecord& record, kafka::Emitter& out);
  std::optional<kafka::Failure> handle_plan_event(const nlohmann::json& event, const kafka::InboundRecord& record,
                                                  kafka::Emitter& out);
  // Publishes the gate's records (jobs.plans) and released tasks (tasks.submitted), and marks
  // the released files in the job's progress. Under the job's lock.
  void emit_gate(kafka::Emitter& out, const std::string& job_id, DependencyGate::Output output,
                 const kafka::InboundRecord& cause);
  // A planned file at the fix limit goes back to the planner; false when it had its replans.
  bool replan(const nlohmann::json& event, const kafka::InboundRecord& record, kafka::Emitter& out);
  // A QA_PASSED that the reviews take first: the REVIEW_TASK is emitted, and true returned.
  bool send_to_review(const nlohmann::json& event, const kafka::InboundRecord& record, kafka::Emitter& out);
  // jobs.plans records, marked with this replica's origin.
  void emit_plan_records(kafka::Emitter& out, const std::vector<std::pair<std::string, nlohmann::json>>& records,
                         const kafka::InboundRecord& cause);
  // The job check, when every planned file has ended and none is out (under the job's lock).
  // Records the job check's state (jobs.plans: state and attempt) and shows `shown` (its state,
  // attempt, checks, findings...) in the job's progress. Under the job's lock.
  void show_job_check(kafka::Emitter& out, const std::string& job_id, const nlohmann::json& shown,
                      const kafka::InboundRecord& cause);
  // The JOB_CHECK_REQUESTED record's value for the job's passed files; `why_not` says why it
  // cannot be sent (a file too large to hold, the record too large, invalid).
  std::string job_check_request(const std::string& job_id, int attempt, const std::vector<nlohmann::json>& files,
                                std::string& why_not) const;
  void check_job_if_ready(kafka::Emitter& out, const std::string& job_id, const kafka::InboundRecord& cause);
  std::optional<kafka::Failure> handle_job_check(const nlohmann::json& event, const kafka::InboundRecord& record,
                                                 kafka::Emitter& out);
  // Delivers the held files of a job (their QA_PASSED events, to deploy.requests), except `skip`.
  void deliver_held(kafka::Emitter& out, const std::string& job_id, const std::vector<nlohmann::json>& files,
                    const std::set<std::string>& skip, const kafka::InboundRecord& cause);
  // True the first time an id is seen within the window.
  bool first_sight(const std::string& id);
  void publish(kafka::Emitter& out, const std::string& job_id, const JobProgress::Update& update);
  // One jobs.progress record: to the publisher, holding the input, or emitted.
  // `render`, when set, makes the record's value (CoalescingPublisher::Render): at once without
  // a publisher.
  void publish_progress(kafka::Emitter& out, kafka::OutgoingRecord record, CoalescingPublisher::Render render = {});
  // A jobs.progress record of `key`, its value still to be made.
  kafka::OutgoingRecord progress_record(std::string key) const;
  void count(bool failed, const std::string& label_a, const std::string& label_b);

  events::MessageValidator validator_;
  RoutingTable table_;
  std::string submitted_topic_;
  std::string dlq_topic_;
  std::string progress_topic_;
  std::string plans_topic_;
  std::string fix_topic_;
  std::string deploy_topic_;
  std::string escalations_topic_;
  std::string qa_topic_;
  JobCheckOptions job_checks_;
  std::optional<ReviewRules> reviews_;
  kafka::FailureRouter dead_letters_;
  JobProgress progress_;
  CoalescingPublisher* progress_publisher_ = nullptr;
  DependencyGate gate_;
  std::string origin_;

  std::mutex dedup_mu_;
  std::unordered_set<std::string> seen_;
  std::deque<std::string> seen_order_;
  std::size_t dedup_window_;

  prometheus::Family<prometheus::Counter>* routed_;
  prometheus::Family<prometheus::Counter>* failed_;
  prometheus::Counter* duplicates_;
  prometheus::Family<prometheus::Counter>* dead_letters_seen_;
  prometheus::Family<prometheus::Counter>* reviews_requested_;
  prometheus::Counter* review_calls_saved_;
  prometheus::Gauge* failure_ratio_;
  std::mutex stats_mu_;
  double routed_count_ = 0;
  double failed_count_ = 0;
};

}  // namespace agentline::router
