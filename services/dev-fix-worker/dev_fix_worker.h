#pragma once
// dev-fix-worker: one pool for dev and fix tasks (the consumer runtime serves tasks.fix, then
// critical, high, normal, low, always the highest that has work). Inside a priority class, tenants
// share the worker by weighted fair queuing (the runtime's, keyed by tenant_of(), weighted by
// --tenant-weights); a tenant over its quota (admit()) waits in place while the others go on.
// Tasks running are bounded by an adaptive limit (concurrency_limit(): AIMD between
// --llm-min-in-flight and --llm-max-in-flight, docs/llm-economics.md). Around the generator
// backend: the result cache (content hash of backend, model, parameters and prompt), the
// LLM-aware rate limiter and the circuit breaker. While the breaker is open or the limiter says
// wait, the handler returns a backoff: the runtime holds consumption, burns no retry and sends
// nothing to the DLQ. Emits FILE_COMPLETED (or FILE_FAILED when the backend rejects the task or its reply
// is cut at max_tokens or empty). PLAN_TASK and REPLAN_TASK are LLM work of the same pool: the
// reply is checked as a plan (plan.h) and emitted as PLAN_COMPLETED or PLAN_REJECTED (with the
// errors, for the router's plan-fix loop). REVIEW_TASK is too: each reviewer of the file is a
// call, and the file comes back as QA_PASSED or QA_FAILED with the findings (review.h). Thread-safe.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agentline/cache/result_cache.h"
#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/topic_catalog.h"
#include "agentline/resilience/adaptive_concurrency.h"
#include "agentline/resilience/circuit_breaker.h"
#include "agentline/resilience/token_bucket.h"
#include "batch_coalescer.h"
#include "generator.h"
#include "job_budgets.h"
#include "llm_rate_limiter.h"
#include "plan.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
template <typename T>
class Family;
struct MetricFamily;
}  // namespace prometheus

namespace agentline::devfix {

struct WorkerConfig {
  int default_max_tokens = 2048;
  LlmLimits limits{0, 0, 0};
  double tenant_rate_per_second = 50;
  double tenant_burst = 100;
  std::map<std::string, double> tenant_weights;  // unlisted tenants weigh 1
  // Each tenant's own limits on the LLM (all zero: none), and per-tenant overrides.
  LlmLimits tenant_limits;
  std::map<std::string, LlmLimits> tenant_overrides;
  resilience::AdaptiveConcurrencyConfig concurrency;
  resilience::CircuitBreakerConfig breaker;
  cache::ResultCacheConfig cache;
  std::size_t context_budget_chars = 24000;  // --context-budget-tokens x 4
  PlanLimits plan;
  int plan_max_tokens = 4096;
  int review_max_tokens = 512;
  // Small files of one job share a call: a task whose max_tokens is at most batch_small_tokens
  // waits up to batch_linger for others, within batch_max_files and batch_max_tokens.
  int batch_max_files = 4;
  int batch_small_tokens = 1024;
  int batch_max_tokens = 4096;
  std::chrono::milliseconds batch_linger{20};
};

class DevFixWorker {
 public:
  DevFixWorker(const kafka::TopicCatalog& catalog, std::unique_ptr<Generator> generator, WorkerConfig config,
               prometheus::Registry& registry, const resilience::Clock& clock = resilience::SystemClock::instance());
  ~DevFixWorker();

  std::optional<kafka::Failure> handle(const kafka::InboundRecord& record, kafka::Emitter& out);

  // Fair queuing (the runtime's ConsumerOptions::fair): a task's tenant ("default" when it names
  // none), a tenant's weight, and its admission: zero when its quota has room (charged), else how
  // long the tenant waits.
  static std::string tenant_of(const kafka::InboundRecord& record);
  double tenant_weight(const std::string& tenant) const;
  std::chrono::milliseconds admit(const std::string& tenant);
  // Tasks that may run at once now (the adaptive limit).
  int concurrency_limit() const { return concurrency_.limit(); }

  // The /stats document: cache, limiter, breaker (the seed's dashboard data).
  nlohmann::json stats();
  // POST /cache/invalidate: {"key": "..."} or {"namespace": "..."}.
  std::pair<int, std::string> invalidate(const std::string& body);
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;
  cache::ResultCache& cache() { return cache_; }
  // The jobs whose budget is spent: main.cpp feeds it from jobs.progress. A task of such a job is
  // dead-lettered as budget_exhausted before any call.
  JobBudgets& budgets() { return budgets_; }
  // A backend tried, in the order added, when those before it cannot take a call (breaker open,
  // limits spent, 429, unavailable): --llm-fallbacks. Call before handling starts.
  void add_fallback(std::unique_ptr<Generator> generator, LlmLimits limits);

 private:
  struct Metrics;
  void add_usage(nlohmann::json& payload, const nlohmann::json& generated, bool cached,
                 std::chrono::steady_clock::time_point started) const;
  // Counts the call's `usage` (prompt_tokens, completion_tokens, cost_usd) against the task's job
  // budget at once, before the router's summary says it (JobBudgets::charge).
  void charge_job(const nlohmann::json& task, const nlohmann::json& usage);
  std::optional<kafka::Failure> handle_plan(const nlohmann::json& task, const kafka::InboundRecord& record,
                                            kafka::Emitter& out);
  // REVIEW_TASK: one call per reviewer; emits QA_PASSED (findings as warnings) or QA_FAILED.
  std::optional<kafka::Failure> handle_review(const nlohmann::json& task, const kafka::InboundRecord& record,
                                              kafka::Emitter& out);
  // The generation for `request`, from the cache or the backend. A Failure when the record must
  // wait (breaker open, rate limited) or be retried (backend unavailable); `rejected` when the
  // backend refused the task or its reply cannot be used (cut, empty).
  std::optional<kafka::Failure> generate(const GenerationRequest& request, cache::ResultCache::Result& result,
                                         std::optional<GenerationError>& rejected);
  // One backend call for `requests` behind the breaker and the limiter.
  std::vector<Generation> call_backend(const std::vector<GenerationRequest>& requests);
  events::MessageValidator validator_;
  struct Backend {
    std::unique_ptr<Generator> generator;
    resilience::CircuitBreaker*
        breaker;  // from breakers_, named llm-<backend> (the primary) or llm-fallback<n>-<model>
    std::unique_ptr<LlmRateLimiter> limiter;
  };
  const Generator& primary() const { return *backends_.front().generator; }
  WorkerConfig config_;
  const resilience::Clock& clock_;
  std::string events_topic_;
  std::string cache_namespace_;
  cache::ResultCache cache_;
  resilience::CircuitBreakerRegistry breakers_;
  std::vector<Backend> backends_;  // the primary first
  resilience::KeyedRateLimiter tenants_;
  resilience::AdaptiveConcurrency concurrency_;
  TenantTurns turns_;
  // The tenant's own limiter, made on first use; null when the tenant has no limits.
  LlmRateLimiter* tenant_limiter(const std::string& tenant);
  // --tenant-limits' entry for `tenant`, else the --tenant-* limits.
  const LlmLimits& limits_of_tenant(const std::string& tenant) const;
  nlohmann::json tenant_limits_json();
  mutable std::mutex tenant_limiters_mu_;
  std::map<std::string, std::unique_ptr<LlmRateLimiter>> tenant_limiters_;
  std::atomic<int> calls_in_flight_{0};
  std::atomic<int> tasks_running_{0};
  JobBudgets budgets_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<BatchCoalescer> batches_;
};

}  // namespace agentline::devfix
