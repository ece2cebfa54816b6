#include "worker_options.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agentline/resilience/breaker_options.h"

namespace agentline::devfix {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

WorkerOptions::WorkerOptions() {
  // An LLM endpoint: judge it over 50 calls once 10 have been made, slow calls do not count.
  worker.breaker.failure_rate_threshold = 50;
  worker.breaker.minimum_calls = 10;
  worker.breaker.window_size = 50;
  worker.breaker.open_wait = std::chrono::seconds(30);
  worker.breaker.slow_call_duration = std::chrono::milliseconds(0);
  worker.breaker.half_open_max_probes = 1;
  worker.breaker.half_open_successes_to_close = 3;
  worker.cache.name = "generations";
  worker.cache.ttl = std::chrono::hours(24);
}

void WorkerOptions::bind(config::OptionSet& o) {
  o.add("generator", &backend, "Generator backend: template (offline stand-in for an LLM), openai, exec");
  o.add("llm-base-url", &openai.base_url, "OpenAI-compatible API base URL (…/v1)");
  o.add("llm-model", &openai.model, "Model name");
  o.add("llm-api-key", &openai.api_key, "API key (prefer AGENTLINE_LLM_API_KEY or --llm-api-key-file)");
  o.add("llm-api-key-file", &api_key_file, "File holding the API key");
  o.add("llm-auth-header", &openai.auth_header, "Header carrying the key: Authorization (Bearer) or api-key (Azure)");
  o.add("llm-temperature", &openai.temperature, "Sampling temperature");
  o.add("llm-structured-output", &openai.structured_output,
        "How a plan asks for JSON: json_object, json_schema (OpenAI structured outputs), json_object_schema "
        "(llama.cpp's grammar), none");
  o.add("llm-timeout-ms", &openai.timeout, "Timeout of one LLM call");
  o.add("llm-prices", &prices_file, "Price table (JSON: model -> prompt_per_1k, completion_per_1k in USD)");
  o.add("exec-command", &exec_command,
        "exec backend: the command and its arguments (task JSON on stdin, file on stdout)");
  o.add("exec-timeout-ms", &exec_timeout, "exec backend: timeout of one run");
  o.add("max-tokens", &worker.default_max_tokens, "Completion tokens per call unless the task sets max_tokens");
  o.add("llm-requests-per-minute", &rpm_, "Rate limit: requests per minute (0: none)");
  o.add("llm-tokens-per-minute", &tpm_, "Rate limit: tokens per minute (0: none)");
  o.add("llm-max-in-flight", &llm_in_flight_,
        "Adaptive concurrency: the most tasks generating at once (0: --max-in-flight, which also caps it)");
  o.add("llm-min-in-flight", &worker.concurrency.min_limit,
        "Adaptive concurrency: the fewest tasks generating at once, however overloaded the backend");
  o.add("tenant-rate", &worker.tenant_rate_per_second, "Tasks per second per tenant (over it, its tasks wait)");
  o.add("tenant-burst", &worker.tenant_burst, "Burst of tasks per tenant");
  o.add("tenant-weights", &tenant_weights_,
        "Shares of the worker between tenants inside a priority class: tenant=weight,... (unlisted: 1)");
  o.add("read-ahead", &read_ahead_,
        "Tasks read ahead per replica: fair queuing between tenants sees this far (about 2 KB each)");
  resilience::bind_breaker_options(o, "breaker-", worker.breaker, "the LLM");
  o.add("cache-entries", &cache_entries_, "Result cache: maximum entries");
  o.add("cache-ttl-s", &worker.cache.ttl, "Result cache: time to live of an entry", std::chrono::seconds(1));
  o.add("cache-share", &cache_share_, "Result cache: 1 shares it with other replicas through the cache.results topic");
  o.add("batch-max-files", &worker.batch_max_files, "Small files of one job per shared LLM call (1: no sharing)");
  o.add("batch-small-tokens", &worker.batch_small_tokens,
        "A task with max_tokens up to this is small enough to share a call");
  o.add("batch-max-tokens", &worker.batch_max_tokens, "The max_tokens of a shared call's files together");
  o.add("batch-linger-ms", &worker.batch_linger, "How long a small file waits for others of its job");
  o.add("context-budget-tokens", &context_budget_tokens_,
        "Tokens of job context in a file's prompt: goal, dependencies, interface, file list (docs/planning.md)");
  o.add("plan-max-files", &worker.plan.max_files,
        "Most files a plan may have (a goal's constraints.max_files may lower it)");
  o.add("plan-max-tokens", &worker.plan_max_tokens,
        "Completion tokens of a planning call unless the task sets max_tokens");
  o.add("review-max-tokens", &worker.review_max_tokens, "Completion tokens of one reviewer's call (docs/qa.md)");
  o.after_parse([this] {
    const auto& so = openai.structured_output;
    if (so != "json_object" && so != "json_schema" && so != "json_object_schema" && so != "none")
      throw std::invalid_argument(
          "--llm-structured-output must be json_object, json_schema, json_object_schema or none");
    if (backend != "template" && backend != "openai" && backend != "exec")
      throw std::invalid_argument("--generator must be template, openai or exec, not '" + backend + "'");
    if (!api_key_file.empty()) openai.api_key = config::read_secret(api_key_file, "AGENTLINE_LLM_API_KEY");
    if (!prices_file.empty()) openai.prices = parse_prices(read_file(prices_file));
    worker.tenant_weights = parse_tenant_weights(tenant_weights_);
    if (read_ahead_ < 1) throw std::invalid_argument("--read-ahead must be at least 1");
  });
}

WorkerConfig WorkerOptions::worker_config(int max_in_flight) const {
  WorkerConfig c = worker;
  const int most = std::min(llm_in_flight_ > 0 ? llm_in_flight_ : max_in_flight, max_in_flight);
  c.limits = {rpm_, tpm_, most};
  c.concurrency.max_limit = most;
  c.concurrency.min_limit = std::clamp(c.concurrency.min_limit, 1, most);
  // Start at a quarter of the range and probe upwards: a cold start should not hit a provider
  // with everything at once.
  c.concurrency.initial_limit = std::max(c.concurrency.min_limit, most / 4);
  c.context_budget_chars = static_cast<std::size_t>(std::max(0, context_budget_tokens_)) * 4;
  c.plan.max_files = std::max(1, c.plan.max_files);
  c.plan_max_tokens = std::max(1, c.plan_max_tokens);
  c.review_max_tokens = std::max(1, c.review_max_tokens);
  c.cache.max_entries = static_cast<std::size_t>(std::max(1, cache_entries_));
  c.cache.ttl = std::max<decltype(c.cache.ttl)>(c.cache.ttl, std::chrono::seconds(1));
  return c;
}

std::map<std::string, double> parse_tenant_weights(const std::string& text) {
  std::map<std::string, double> weights;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    double weight = 0;
    try {
      if (eq != std::string::npos && eq > 0) weight = std::stod(item.substr(eq + 1));
    } catch (const std::exception&) {
      weight = 0;
    }
    if (!(weight > 0))
      throw std::invalid_argument("--tenant-weights: '" + item + "' is not tenant=weight (weight > 0)");
    weights[item.substr(0, eq)] = weight;
  }
  return weights;
}

std::unique_ptr<Generator> WorkerOptions::make_generator() const {
  if (backend == "openai") return make_openai_generator(openai);
  if (backend == "exec") return make_exec_generator(exec_command, exec_timeout);
  return make_template_generator();
}

std::string WorkerOptions::describe() const {
  return backend == "template" ? "template (offline stand-in for an LLM)" : backend;
}

}  // namespace agentline::devfix
