#pragma once
// dev-fix-worker's own options: the generator backend and its settings, the LLM's limits and
// circuit breaker, the result cache, batching of small files, planning and review. bind() adds
// them to the service's OptionSet with this binary's defaults; after parsing, worker_config()
// and make_generator() build what they name (std::invalid_argument for a bad choice).
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agentline/config/options.h"
#include "dev_fix_worker.h"
#include "generator.h"

namespace agentline::devfix {

struct WorkerOptions {
  std::string backend = "template";  // template, openai or exec
  OpenAiConfig openai;
  std::string api_key_file;
  std::string prices_file;
  std::vector<std::string> exec_command;
  std::chrono::milliseconds exec_timeout{120000};
  WorkerConfig worker;

  WorkerOptions();
  void bind(config::OptionSet& options);
  // The worker's configuration; `max_in_flight` (the service's) bounds concurrent LLM calls
  // unless --llm-max-in-flight does.
  WorkerConfig worker_config(int max_in_flight) const;
  std::unique_ptr<Generator> make_generator() const;
  // The --llm-fallbacks backends, in order, each with its own limits.
  std::vector<std::pair<std::unique_ptr<Generator>, LlmLimits>> make_fallbacks() const;
  std::string describe() const;  // the backend, for the start-up log
  // The result cache is shared with the other replicas through the cache.results topic.
  bool share_cache() const { return cache_share_ != 0; }
  std::size_t read_ahead() const { return static_cast<std::size_t>(read_ahead_); }

 private:
  int rpm_ = 0, tpm_ = 0, llm_in_flight_ = 0, rph_ = 0, tpd_ = 0, burst_ = 0;
  int tenant_rpm_ = 0, tenant_tpm_ = 0, tenant_rph_ = 0, tenant_tpd_ = 0, tenant_burst_requests_ = 0,
      tenant_tpmonth_ = 0;
  double tenant_usd_per_day_ = 0, tenant_usd_per_month_ = 0;
  std::string tenant_limits_file_;
  std::string fallbacks_;
  struct Fallback {
    OpenAiConfig openai;
    LlmLimits limits;
  };
  std::vector<Fallback> fallback_specs_;
  void parse_fallbacks(const std::string& json_text);
  int cache_entries_ = 10000;
  int cache_share_ = 0;
  int context_budget_tokens_ = 6000;
  std::string tenant_weights_;
  int read_ahead_ = 4096;
};

// "gold=3,free=1" -> {gold: 3, free: 1}; std::invalid_argument on a malformed item.
std::map<std::string, double> parse_tenant_weights(const std::string& text);
// {"acme": {"requests_per_minute": 60, "requests_per_hour": 1000, "tokens_per_minute": 0,
// "tokens_per_day": 2000000, "burst": 10, "usd_per_day": 5.0}, ...} (omitted: no limit) -> limits
// per tenant;
// std::invalid_argument on anything else.
std::map<std::string, LlmLimits> parse_tenant_limits(const std::string& json_text);

}  // namespace agentline::devfix
