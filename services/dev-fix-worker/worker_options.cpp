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
  o.add("llm-fallbacks", &fallbacks_,
        "Backends tried in order when the one before cannot take a call (breaker open, limits spent, 429, down): "
        "a JSON array, or a file holding it, of {base_url, model, api_key_file, auth_header, price: "
        "{prompt_per_1k, completion_per_1k}, limits: {requests_per_minute, requests_per_hour, tokens_per_minute, "
        "tokens_per_day, burst}} (OpenAI-compatible; the other --llm-* settings carry over)");
  o.add("exec-command", &exec_command,
        "exec backend: the command and its arguments (task JSON on stdin, file on stdout)");
  o.add("exec-timeout-ms", &exec_timeout, "exec backend: timeout of one run");
  o.add("max-tokens", &worker.default_max_tokens, "Completion tokens per call unless the task sets max_tokens");
  o.add("llm-requests-per-minute", &rpm_, "Rate limit: requests per minute (0: none)");
  o.add("llm-tokens-per-minute", &tpm_, "Rate limit: tokens per minute (0: none)");
  o.add("llm-requests-per-hour", &rph_, "Rate limit: requests per hour (0: none)");
  o.add("llm-tokens-per-day", &tpd_, "Rate limit: tokens per day (0: none)");
  o.add("llm-burst", &burst_, "Rate limit: requests in any one second (0: none)");
  o.add("llm-max-in-flight", &llm_in_flight_,
        "Adaptive concurrency: the most tasks generating at once (0: --max-in-flight, which also caps it)");
  o.add("llm-min-in-flight", &worker.concurrency.min_limit,
        "Adaptive concurrency: the fewest tasks generating at once, however overloaded the backend");
  o.add("tenant-rate", &worker.tenant_rate_per_second, "Tasks per second per tenant (over it, its tasks wait)");
  o.add("tenant-burst", &worker.tenant_burst, "Burst of tasks per tenant");
  o.add("tenant-requests-per-minute", &tenant_rpm_, "Each tenant's LLM requests per minute (0: none)");
  o.add("tenant-requests-per-hour", &tenant_rph_, "Each tenant's LLM requests per hour (0: none)");
  o.add("tenant-tokens-per-minute", &tenant_tpm_, "Each tenant's LLM tokens per minute (0: none)");
  o.add("tenant-tokens-per-day", &tenant_tpd_, "Each tenant's LLM tokens per day (0: none)");
  o.add("tenant-tokens-per-month", &tenant_tpmonth_,
        "Each tenant's LLM tokens in any 30 days, its monthly budget: spent, its tasks wait (0: none)");
  o.add("tenant-usd-per-day", &tenant_usd_per_day_,
        "Each tenant's LLM spending in dollars per day, counted from every replica's calls: spent, its tasks wait "
        "(0: none)");
  o.add("tenant-usd-per-month", &tenant_usd_per_month_,
        "Each tenant's LLM spending in dollars in any 30 days, counted like --tenant-usd-per-day (0: none)");
  o.add("tenant-burst-requests", &tenant_burst_requests_, "Each tenant's LLM requests in any one second (0: none)");
  o.add("tenant-limits", &tenant_limits_file_,
        "JSON file of per-tenant limits replacing the --tenant-* ones: {tenant: {requests_per_minute, "
        "requests_per_hour, tokens_per_minute, tokens_per_day, tokens_per_month, burst, usd_per_day, "
        "usd_per_month}}");
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
    if (!tenant_limits_file_.empty()) worker.tenant_overrides = parse_tenant_limits(read_file(tenant_limits_file_));
    if (!fallbacks_.empty()) parse_fallbacks(fallbacks_.front() == '[' ? fallbacks_ : read_file(fallbacks_));
    for (int v : {rpm_, tpm_, rph_, tpd_, burst_, tenant_rpm_, tenant_tpm_, tenant_rph_, tenant_tpd_,
                  tenant_burst_requests_, tenant_tpmonth_})
      if (v < 0) throw std::invalid_argument("rate limits must not be negative");
    if (tenant_usd_per_day_ < 0 || tenant_usd_per_month_ < 0)
      throw std::invalid_argument("tenant budgets must not be negative");
    if (read_ahead_ < 1) throw std::invalid_argument("--read-ahead must be at least 1");
  });
}

WorkerConfig WorkerOptions::worker_config(int max_in_flight) const {
  WorkerConfig c = worker;
  const int most = std::min(llm_in_flight_ > 0 ? llm_in_flight_ : max_in_flight, max_in_flight);
  c.limits = {rpm_, tpm_, most, rph_, tpd_, burst_};
  c.tenant_limits = {tenant_rpm_,     tenant_tpm_,         0,
                     tenant_rph_,     tenant_tpd_,         tenant_burst_requests_,
                     tenant_tpmonth_, tenant_usd_per_day_, tenant_usd_per_month_};
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

namespace {

// {"requests_per_minute": 60, ...} -> LlmLimits; `where` names it in errors. `budgets`: a tenant's,
// which may also be in dollars.
LlmLimits parse_limits(const nlohmann::json& spec, const std::string& where, bool budgets = false) {
  if (!spec.is_object()) throw std::invalid_argument(where + " is not an object");
  LlmLimits limits;
  for (const auto& [name, value] : spec.items()) {
    if (budgets && (name == "usd_per_day" || name == "usd_per_month")) {
      if (!value.is_number() || value.get<double>() < 0)
        throw std::invalid_argument(where + "." + name + " must be a number >= 0");
      (name == "usd_per_day" ? limits.usd_per_day : limits.usd_per_month) = value.get<double>();
      continue;
    }
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
      throw std::invalid_argument(where + "." + name + " must be a whole number >= 0");
    const auto v = value.get<std::int64_t>();
    if (name == "requests_per_minute")
      limits.requests_per_minute = v;
    else if (name == "requests_per_hour")
      limits.requests_per_hour = v;
    else if (name == "tokens_per_minute")
      limits.tokens_per_minute = v;
    else if (name == "tokens_per_day")
      limits.tokens_per_day = v;
    else if (name == "burst")
      limits.burst = v;
    else if (name == "tokens_per_month")
      limits.tokens_per_month = v;
    else
      throw std::invalid_argument(where + ": unknown limit " + name);
  }
  return limits;
}

}  // namespace

std::map<std::string, LlmLimits> parse_tenant_limits(const std::string& json_text) {
  const auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (!doc.is_object()) throw std::invalid_argument("--tenant-limits: expected a JSON object of tenants");
  std::map<std::string, LlmLimits> out;
  for (const auto& [tenant, spec] : doc.items()) out[tenant] = parse_limits(spec, "--tenant-limits: " + tenant, true);
  return out;
}

void WorkerOptions::parse_fallbacks(const std::string& json_text) {
  const auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (!doc.is_array()) throw std::invalid_argument("--llm-fallbacks: expected a JSON array of backends");
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& spec = doc[i];
    const std::string where = "--llm-fallbacks[" + std::to_string(i) + "]";
    if (!spec.is_object() || !spec.contains("base_url") || !spec.contains("model") || !spec["base_url"].is_string() ||
        !spec["model"].is_string())
      throw std::invalid_argument(where + ": needs base_url and model");
    Fallback f{openai, {}};
    f.openai.base_url = spec["base_url"];
    f.openai.model = spec["model"];
    f.openai.api_key = spec.contains("api_key_file") ? config::read_secret(spec["api_key_file"].get<std::string>(), "")
                                                     : std::string();
    if (spec.contains("auth_header")) f.openai.auth_header = spec["auth_header"];
    if (spec.contains("price")) {
      const auto& price = spec["price"];
      f.openai.prices[f.openai.model] = {price.value("prompt_per_1k", 0.0), price.value("completion_per_1k", 0.0)};
    }
    if (spec.contains("limits")) f.limits = parse_limits(spec["limits"], where + ".limits");
    fallback_specs_.push_back(std::move(f));
  }
}

std::vector<std::pair<std::unique_ptr<Generator>, LlmLimits>> WorkerOptions::make_fallbacks() const {
  std::vector<std::pair<std::unique_ptr<Generator>, LlmLimits>> out;
  for (const auto& f : fallback_specs_) out.emplace_back(make_openai_generator(f.openai), f.limits);
  return out;
}

std::unique_ptr<Generator> WorkerOptions::make_generator() const {
  if (backend == "openai") return make_openai_generator(openai);
  if (backend == "exec") return make_exec_generator(exec_command, exec_timeout);
  return make_template_generator();
}

std::string WorkerOptions::describe() const {
  std::string text = backend == "template" ? "template (offline stand-in for an LLM)" : backend;
  for (const auto& f : fallback_specs_) text += ", then " + f.openai.model + " at " + f.openai.base_url;
  return text;
}

}  // namespace agentline::devfix
