#pragma once
// What jobs and tenants have spent, as the router's job summaries on jobs.progress say
// (docs/llm-economics.md); every replica reads the same summaries, so all agree.
//  - Jobs: a summary with "budget": {"exhausted": true} stops the job's remaining work here — its
//    tasks are dead-lettered as budget_exhausted (escalated, and replayable once `agentline
//    budget` raises the budget). Only jobs with a budget are kept.
//  - Tenants: what a job's summary shows spent beyond its previous one is charged to the job's
//    "tenant" at the record's time, in windows of a day and of 30 days (tokens and dollars); a
//    tenant over a budget (tokens_per_day/month, usd_per_day/month of its limits) is held.
//    A job whose summaries were compacted away counts at its last summary's time.
// Fed by a TopicFollower of jobs.progress. Thread-safe; the time comes from an injected Clock.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "agentline/kafka/record.h"
#include "agentline/resilience/window_counter.h"
#include "llm_rate_limiter.h"

namespace agentline::devfix {

class JobBudgets {
 public:
  // `count_tenants`: some tenant has a budget (LlmLimits::has_budget), so summaries are read for
  // their tenant's spending too; without, only summaries with a job budget are parsed.
  explicit JobBudgets(const resilience::Clock& clock = resilience::SystemClock::instance(), bool count_tenants = false);
  // A jobs.progress record: a job's summary (key without '/') sets what is known of its
  // budget and charges its tenant; a tombstone forgets the job. File records are skipped unread.
  void apply(const kafka::InboundRecord& record);
  // Why `job` may not spend more, or nothing: its summary says so, or its summary's usage plus this
  // replica's calls for it that the summary cannot include reach its budget.
  std::optional<std::string> exhausted(const std::string& job) const;
  // The budget a task carries, for a job no summary has told of yet.
  void note_budget(const std::string& job, const nlohmann::json& budget);
  // A call this replica made for `job` at `at_ms` (epoch): counted on top of the job's summaries
  // made before it (they cannot include it) until one made after it arrives. Kept only for jobs
  // with a budget. Without it, a fast backend spent ten times a small budget in the time a
  // summary takes to come back (bench/REPORT.md, "A job's budget").
  void charge(const std::string& job, std::int64_t tokens, double cost_usd, std::int64_t at_ms);
  std::size_t size() const;

  struct TenantSpent {
    std::int64_t tokens_day = 0, tokens_month = 0;
    double usd_day = 0, usd_month = 0;
  };
  TenantSpent tenant_spent(const std::string& tenant);
  // Why `tenant` may not spend more under the budgets in `limits` and how long until it may,
  // or nothing.
  struct Hold {
    std::string why;
    resilience::Duration wait;
  };
  std::optional<Hold> tenant_over(const std::string& tenant, const LlmLimits& limits);

 private:
  struct Own {
    std::int64_t at_ms, tokens;
    double cost_usd;
  };
  struct Spent {
    std::int64_t tokens = 0, max_tokens = 0;
    double cost_usd = 0, max_cost_usd = 0;
    bool exhausted = false;
    std::deque<Own> own;  // this replica's calls the last summary cannot include, oldest first
  };
  struct Tenant {
    resilience::WindowCounter tokens_day, tokens_month, micro_usd_day, micro_usd_month;
    Tenant();
  };
  // Charges `tenant` what `job` spent beyond its last summary, at `at_ms` (epoch). Under mu_.
  void charge_locked(const std::string& job, const std::string& tenant, std::int64_t tokens, double cost_usd,
                     std::int64_t at_ms);
  const resilience::Clock& clock_;
  const bool count_tenants_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Spent> jobs_;
  std::unordered_map<std::string, std::pair<std::int64_t, double>> charged_;  // by job: tokens, dollars
  std::unordered_map<std::string, Tenant> tenants_;
};

}  // namespace agentline::devfix
