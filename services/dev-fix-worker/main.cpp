// dev-fix-worker: tasks.{fix,critical,high,normal,low} -> events (FILE_COMPLETED / FILE_FAILED).
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "agentline/cache/cache_replicator.h"
#include "agentline/service/service_host.h"
#include "dev_fix_worker.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace agentline;
  const std::vector<std::string> priorities{"tasks.fix", "tasks.critical", "tasks.high", "tasks.normal", "tasks.low"};
  service::ServiceHost host("dev-fix-worker", "Generates files for dev and fix tasks, highest priority first.",
                            priorities);
  std::string backend = "template";
  devfix::OpenAiConfig openai;
  std::string api_key_file;
  std::string prices_file;
  int llm_timeout_ms = 120000;
  std::vector<std::string> exec_command;
  int exec_timeout_ms = 120000;
  int rpm = 0, tpm = 0, llm_in_flight = 0;
  double tenant_rate = 50, tenant_burst = 100;
  double breaker_failure_rate = 50;
  int breaker_minimum_calls = 10, breaker_window = 50, breaker_open_wait_ms = 30000, breaker_slow_call_ms = 0;
  int breaker_probes = 1, breaker_successes = 3;
  int cache_entries = 10000, cache_ttl_s = 86400, cache_share = 0;
  int max_tokens = 2048;
  int batch_max_files = 4, batch_small_tokens = 1024, batch_max_tokens = 4096, batch_linger_ms = 20;
  int context_budget_tokens = 6000, plan_max_files = 50, plan_max_tokens = 4096, review_max_tokens = 512;
  auto& o = host.options();
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
  o.add("llm-timeout-ms", &llm_timeout_ms, "Timeout of one LLM call");
  o.add("llm-prices", &prices_file, "Price table (JSON: model -> prompt_per_1k, completion_per_1k in USD)");
  o.add("exec-command", &exec_command,
        "exec backend: the command and its arguments (task JSON on stdin, file on stdout)");
  o.add("exec-timeout-ms", &exec_timeout_ms, "exec backend: timeout of one run");
  o.add("max-tokens", &max_tokens, "Completion tokens per call unless the task sets max_tokens");
  o.add("llm-requests-per-minute", &rpm, "Rate limit: requests per minute (0: none)");
  o.add("llm-tokens-per-minute", &tpm, "Rate limit: tokens per minute (0: none)");
  o.add("llm-max-in-flight", &llm_in_flight, "Rate limit: concurrent calls (0: --max-in-flight)");
  o.add("tenant-rate", &tenant_rate, "Tasks per second per tenant");
  o.add("tenant-burst", &tenant_burst, "Burst of tasks per tenant");
  o.add("breaker-failure-rate", &breaker_failure_rate, "Circuit breaker: failure rate (percent) that opens it");
  o.add("breaker-minimum-calls", &breaker_minimum_calls, "Circuit breaker: calls before the rate counts");
  o.add("breaker-window", &breaker_window, "Circuit breaker: calls in the sliding window");
  o.add("breaker-open-wait-ms", &breaker_open_wait_ms, "Circuit breaker: time open before probing");
  o.add("breaker-slow-call-ms", &breaker_slow_call_ms, "Circuit breaker: a call at least this long is slow (0: off)");
  o.add("breaker-probes", &breaker_probes, "Circuit breaker: concurrent probes while half-open");
  o.add("breaker-successes", &breaker_successes, "Circuit breaker: successful probes that close it");
  o.add("cache-entries", &cache_entries, "Result cache: maximum entries");
  o.add("cache-ttl-s", &cache_ttl_s, "Result cache: time to live of an entry");
  o.add("cache-share", &cache_share, "Result cache: 1 shares it with other replicas through the cache.results topic");
  o.add("batch-max-files", &batch_max_files, "Small files of one job per shared LLM call (1: no sharing)");
  o.add("batch-small-tokens", &batch_small_tokens, "A task with max_tokens up to this is small enough to share a call");
  o.add("batch-max-tokens", &batch_max_tokens, "The max_tokens of a shared call's files together");
  o.add("batch-linger-ms", &batch_linger_ms, "How long a small file waits for others of its job");
  o.add("context-budget-tokens", &context_budget_tokens,
        "Tokens of job context in a file's prompt: goal, dependencies, interface, file list (docs/planning.md)");
  o.add("plan-max-files", &plan_max_files, "Most files a plan may have (a goal's constraints.max_files may lower it)");
  o.add("plan-max-tokens", &plan_max_tokens, "Completion tokens of a planning call unless the task sets max_tokens");
  o.add("review-max-tokens", &review_max_tokens, "Completion tokens of one reviewer's call (docs/qa.md)");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;
  host.set_priority_order(priorities);

  std::unique_ptr<devfix::DevFixWorker> worker;
  devfix::WorkerConfig config;
  try {
    std::unique_ptr<devfix::Generator> generator;
    if (backend == "template") {
      generator = devfix::make_template_generator();
    } else if (backend == "openai") {
      if (!api_key_file.empty()) {
        openai.api_key = read_file(api_key_file);
        while (!openai.api_key.empty() && std::isspace(static_cast<unsigned char>(openai.api_key.back())))
          openai.api_key.pop_back();
      }
      openai.timeout = std::chrono::milliseconds(llm_timeout_ms);
      const auto& so = openai.structured_output;
      if (so != "json_object" && so != "json_schema" && so != "json_object_schema" && so != "none")
        throw std::invalid_argument(
            "--llm-structured-output must be json_object, json_schema, json_object_schema or none");
      if (!prices_file.empty()) openai.prices = devfix::parse_prices(read_file(prices_file));
      generator = devfix::make_openai_generator(openai);
    } else if (backend == "exec") {
      generator = devfix::make_exec_generator(exec_command, std::chrono::milliseconds(exec_timeout_ms));
    } else {
      throw std::invalid_argument("--generator must be template, openai or exec, not '" + backend + "'");
    }
    config.default_max_tokens = max_tokens;
    config.context_budget_chars = static_cast<std::size_t>(std::max(0, context_budget_tokens)) * 4;
    config.plan.max_files = std::max(1, plan_max_files);
    config.plan_max_tokens = std::max(1, plan_max_tokens);
    config.review_max_tokens = std::max(1, review_max_tokens);
    config.batch_max_files = batch_max_files;
    config.batch_small_tokens = batch_small_tokens;
    config.batch_max_tokens = batch_max_tokens;
    config.batch_linger = std::chrono::milliseconds(batch_linger_ms);
    config.limits = {rpm, tpm, llm_in_flight > 0 ? llm_in_flight : host.common().max_in_flight};
    config.tenant_rate_per_second = tenant_rate;
    config.tenant_burst = tenant_burst;
    config.breaker.failure_rate_threshold = breaker_failure_rate;
    config.breaker.minimum_calls = breaker_minimum_calls;
    config.breaker.window_size = breaker_window;
    config.breaker.open_wait = std::chrono::milliseconds(breaker_open_wait_ms);
    config.breaker.max_open_wait = std::max(config.breaker.max_open_wait, config.breaker.open_wait);
    config.breaker.slow_call_duration = std::chrono::milliseconds(breaker_slow_call_ms);
    config.breaker.half_open_max_probes = breaker_probes;
    config.breaker.half_open_successes_to_close = breaker_successes;
    config.cache.name = "generations";
    config.cache.max_entries = static_cast<std::size_t>(std::max(1, cache_entries));
    config.cache.ttl = std::chrono::seconds(std::max(1, cache_ttl_s));
    worker = std::make_unique<devfix::DevFixWorker>(host.catalog(), std::move(generator), config, *host.registry());
  } catch (const std::exception& e) {
    std::cerr << "dev-fix-worker: configuration error: " << e.what() << "\n";
    return 2;
  }
  spdlog::info("generator backend: {}", backend == "template" ? "template (offline stand-in for an LLM)" : backend);

  std::unique_ptr<cache::CacheReplicator> replicator;
  if (cache_share != 0) {
    cache::CacheReplicatorConfig rc;
    rc.kafka = host.kafka_settings();
    rc.topic = host.catalog().topic("cache.results");
    replicator = std::make_unique<cache::CacheReplicator>(worker->cache(), rc);
    try {
      replicator->warm();
      replicator->start();
    } catch (const std::exception& e) {
      spdlog::error("cannot share the result cache: {}", e.what());
      return 1;
    }
  }
  host.add_route("GET /stats", [&](const std::string&) { return std::pair{200, worker->stats().dump()}; });
  host.add_route("POST /cache/invalidate", [&](const std::string& body) { return worker->invalidate(body); });
  host.add_metrics([&](std::vector<prometheus::MetricFamily>& families) { worker->collect(families); });
  const int rc =
      host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return worker->handle(record, out); });
  if (replicator) replicator->stop();
  return rc;
}
