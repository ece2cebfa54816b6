#pragma once
// The jobs whose budget is spent, as the router's job summaries on jobs.progress say
// (docs/llm-economics.md): a summary with "budget": {"exhausted": true} stops the job's remaining
// work here — its tasks are dead-lettered as budget_exhausted (escalated, and replayable once
// `agentline budget` raises the budget). Fed by a TopicFollower of jobs.progress; only jobs
// with a budget are kept. Thread-safe.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "agentline/kafka/record.h"

namespace agentline::devfix {

class JobBudgets {
 public:
  // A jobs.progress record: a job's summary (key without '/') sets what is known of its
  // budget; a tombstone forgets the job. File records are skipped unread.
  void apply(const kafka::InboundRecord& record);
  // Why `job` may not spend more, or nothing.
  std::optional<std::string> exhausted(const std::string& job) const;
  std::size_t size() const;

 private:
  struct Spent {
    std::int64_t tokens = 0, max_tokens = 0;
    double cost_usd = 0, max_cost_usd = 0;
    bool exhausted = false;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Spent> jobs_;
};

}  // namespace agentline::devfix
