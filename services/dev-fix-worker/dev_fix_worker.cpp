#include "dev_fix_worker.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "agentline/events/ids.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/observability/metric_registration.h"
#include "plan.h"
#include "prompt.h"
#include "review.h"

namespace agentline::devfix {
namespace {

// Counts down what was counted up on entry, however the scope is left.
struct Running {
  std::atomic<int>& n;
  ~Running() { --n; }
};

// Thrown inside the cache's single-flight computation when the call must not be made now.
struct Backoff {
  kafka::Failure failure;
};

// An event for the events topic, keyed by its job (one router replica sees a job's events in
// order), with the cause's trace.
kafka::OutgoingRecord event_record(const std::string& topic, const nlohmann::json& event,
                                   const kafka::InboundRecord& cause) {
  return events::make_record(topic, event["job_id"].get<std::string>(), event, &cause);
}

}  // namespace

// What a generation cost, on the event that carries its result: the backend and model, and
// tokens and cost only for a call made now (a cached result cost nothing this time).
void DevFixWorker::add_usage(nlohmann::json& payload, const nlohmann::json& generated, bool cached,
                             std::chrono::steady_clock::time_point started) const {
  payload["backend"] = generated.value("backend", primary().backend());
  payload["model"] = generated.value("model", primary().model());
  payload["cached"] = cached;
  payload["prompt_tokens"] = cached ? 0 : generated.value("prompt_tokens", 0);
  payload["completion_tokens"] = cached ? 0 : generated.value("completion_tokens", 0);
  payload["cost_usd"] = cached ? 0.0 : generated.value("cost_usd", 0.0);
  payload["duration_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
}

void DevFixWorker::charge_job(const nlohmann::json& task, const nlohmann::json& usage) {
  budgets_.charge(task["job_id"].get<std::string>(),
                  usage.value("prompt_tokens", std::int64_t{0}) + usage.value("completion_tokens", std::int64_t{0}),
                  usage.value("cost_usd", 0.0), events::now_ms());
}

namespace {

// A call for the backend: the task, the file it is for, its attempt, its token budget and prompt.
GenerationRequest request_for(nlohmann::json task, std::string path, int attempt, int max_tokens,
                              const Prompt& prompt) {
  GenerationRequest request;
  request.task = std::move(task);
  request.path = std::move(path);
  request.fix_attempt = attempt;
  request.max_tokens = max_tokens;
  request.system_prompt = prompt.system;
  request.user_prompt = prompt.user;
  return request;
}

std::chrono::milliseconds clamp_wait(resilience::Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  return std::clamp(ms, std::chrono::milliseconds(100), std::chrono::milliseconds(60000));
}

}  // namespace

struct DevFixWorker::Metrics {
  prometheus::Family<prometheus::Counter>* tasks;
  prometheus::Family<prometheus::Histogram>* wait;
  prometheus::Family<prometheus::Counter>* calls;
  prometheus::Counter* prompt_tokens;
  prometheus::Counter* completion_tokens;
  prometheus::Counter* cost;
  prometheus::Counter* tenant_throttled;
  prometheus::Family<prometheus::Counter>* tenant_budget_holds;
  prometheus::Histogram* call_seconds;
  prometheus::Counter* batched_files;
  prometheus::Family<prometheus::Counter>* reviews;
};

DevFixWorker::DevFixWorker(const kafka::TopicCatalog& catalog, std::unique_ptr<Generator> generator,
                           WorkerConfig config, prometheus::Registry& registry, const resilience::Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      events_topic_(catalog.topic("events")),
      cache_namespace_(generator->backend() + ":" + generator->model()),
      cache_(config_.cache, clock),
      breakers_(config_.breaker, clock),
      tenants_("tenants", {config_.tenant_rate_per_second, config_.tenant_burst, 100000, {}}, clock),
      concurrency_("llm-" + generator->backend(), config_.concurrency, clock),
      turns_(clock),
      budgets_(clock, config_.tenant_limits.has_budget() ||
                          std::any_of(config_.tenant_overrides.begin(), config_.tenant_overrides.end(),
                                      [](const auto& o) { return o.second.has_budget(); })),
      metrics_(std::make_unique<Metrics>()) {
  const std::string primary_name = "llm-" + generator->backend();
  backends_.push_back({std::move(generator), &breakers_.get(primary_name),
                       std::make_unique<LlmRateLimiter>(primary_name, config_.limits, clock)});
  auto& m = *metrics_;
  m.tasks = &observability::counter(
      registry, "agentline_tasks_generated_total",
      "Tasks finished by dev-fix-worker, by kind (dev, dev_fix, plan, replan) and outcome (completed, cached, "
      "failed; rejected: a plan that failed its checks; budget_exhausted: its job had spent its budget)");
  m.wait = &observability::histogram(registry, "agentline_task_wait_seconds",
                                     "Time from a task reaching its priority topic to a worker taking it, by priority");
  m.calls = &observability::counter(registry, "agentline_llm_calls_total",
                                    "Generator backend calls by outcome (ok, rate_limited, unavailable, rejected)");
  auto& tokens = observability::counter(registry, "agentline_llm_tokens_total", "Tokens used, by kind");
  m.prompt_tokens = &tokens.Add({{"kind", "prompt"}});
  m.completion_tokens = &tokens.Add({{"kind", "completion"}});
  m.cost = &observability::counter(registry, "agentline_llm_cost_usd_total",
                                   "Cost of the generator calls, from the per-model price table")
                .Add({});
  m.tenant_throttled = &observability::counter(registry, "agentline_tenant_throttled_total",
                                               "Times a tenant's next task waited in place because the tenant was "
                                               "over its quota (--tenant-rate, --tenant-burst)")
                            .Add({});
  m.tenant_budget_holds = &observability::counter(
      registry, "agentline_tenant_budget_holds_total",
      "Times a tenant's task waited in place because the tenant had spent a budget (tokens or dollars per day or "
      "30 days) as counted from every replica's calls on jobs.progress");
  m.batched_files = &observability::counter(registry, "agentline_llm_batched_files_total",
                                            "Files generated in a call shared with other small files of their job")
                         .Add({});
  if (config_.batch_max_files > 1) {
    batches_ =
        std::make_unique<BatchCoalescer>(config_.batch_max_files, config_.batch_max_tokens, config_.batch_linger,
                                         [this](const std::vector<GenerationRequest>& r) { return call_backend(r); });
  }
  m.reviews = &observability::counter(
      registry, "agentline_reviews_total",
      "Model reviews of files, by reviewer and outcome (passed, failed, unreadable, unavailable)");
  m.call_seconds =
      &observability::histogram(registry, "agentline_llm_call_seconds", "Duration of generator backend calls")
           .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120});
}

DevFixWorker::~DevFixWorker() = default;

std::optional<kafka::Failure> DevFixWorker::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  ++tasks_running_;
  Running running{tasks_running_};
  nlohmann::json task;
  if (auto failure = events::MessageValidator::parse(record.value, task)) return failure;
  if (auto failure = validator_.validate_task(task)) return failure;
  const auto& payload = task["payload"];
  const bool fix = task["type"] == "FIX_TASK";
  const std::string kind = fix ? "dev_fix" : "dev";
  const std::string priority = fix ? "fix" : payload.value("priority", "normal");
  if (record.timestamp_ms > 0) {
    metrics_->wait
        ->Add({{"priority", priority}},
              prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800})
        .Observe(std::max<double>(0, static_cast<double>(events::now_ms() - record.timestamp_ms) / 1000.0));
  }

  const std::string type = task["type"];
  const std::string& job = task["job_id"].get_ref<const std::string&>();
  if (const auto budget = payload.find("budget"); budget != payload.end()) budgets_.note_budget(job, *budget);
  if (auto why = budgets_.exhausted(job)) {
    metrics_->tasks->Add({{"kind", kind}, {"outcome", "budget_exhausted"}}).Increment();
    return kafka::Failure::bad_input("budget_exhausted", *why);
  }
  if (type == "PLAN_TASK" || type == "REPLAN_TASK") return handle_plan(task, record, out);
  if (type == "REVIEW_TASK") return handle_review(task, record, out);

  const std::string path = payload["path"];
  const GenerationRequest request =
      request_for(task, path, payload.value("fix_attempt", 0), payload.value("max_tokens", config_.default_max_tokens),
                  build_prompt(task, config_.context_budget_chars));
  const auto started = std::chrono::steady_clock::now();
  cache::ResultCache::Result result;
  std::optional<GenerationError> rejected;
  if (auto failure = generate(request, result, rejected)) return failure;
  if (rejected) {
    // The backend refused this task: report it (the router dead-letters it with the reason).
    nlohmann::json failed = {
        {"id", "ff-" + task["task_id"].get<std::string>() + "-" + std::to_string(request.fix_attempt)},
        {"task_id", task["task_id"]},
        {"job_id", task["job_id"]},
        {"type", "FILE_FAILED"},
        {"created_at", events::now_iso8601()},
        {"payload",
         {{"path", path},
          {"error_class", rejected->error_class().empty() ? "llm_rejected" : rejected->error_class()},
          {"error", std::string(rejected->what()).substr(0, 4000)},
          {"fix_attempt", request.fix_attempt},
          {"backend", primary().backend()}}}};
    out.emit(event_record(events_topic_, failed, record));
    metrics_->tasks->Add({{"kind", kind}, {"outcome", "failed"}}).Increment();
    return std::nullopt;
  }

  const auto generated = nlohmann::json::parse(*result.value);
  const std::string content = generated.value("content", "");
  nlohmann::json event = {
      {"id", "fc-" + task["task_id"].get<std::string>() + "-" + std::to_string(request.fix_attempt)},
      {"task_id", task["task_id"]},
      {"job_id", task["job_id"]},
      {"type", "FILE_COMPLETED"},
      {"created_at", events::now_iso8601()},
      {"payload",
       {{"path", path},
        {"content", content},
        {"content_sha256", cache::sha256_hex(content)},
        {"fix_attempt", request.fix_attempt},
        {"description", payload.value("description", "")}}}};
  add_usage(event["payload"], generated, result.cached, started);
  charge_job(task, event["payload"]);
  for (const char* carried : {"tenant", "priority", "language", "max_tokens", "parent_id"}) {
    if (payload.contains(carried)) event["payload"][carried] = payload[carried];
  }
  if (generated.value("usage_estimated", false)) event["payload"]["usage_estimated"] = true;
  // When the task entered the pipeline (its prioritized record's time; a fix task carries the
  // original's), for the end-to-end latency measured at delivery.
  event["payload"]["submitted_at_ms"] =
      payload.contains("submitted_at_ms") && payload["submitted_at_ms"].is_number_integer()
          ? payload["submitted_at_ms"].get<std::int64_t>()
          : record.timestamp_ms;
  if (auto failure = validator_.validate_event(event)) {
    return kafka::Failure::bad_input("invalid_output", "the generated FILE_COMPLETED is invalid: " + failure->message);
  }
  out.emit(event_record(events_topic_, event, record));
  metrics_->tasks->Add({{"kind", kind}, {"outcome", result.cached ? "cached" : "completed"}}).Increment();
  return std::nullopt;
}

std::string DevFixWorker::tenant_of(const kafka::InboundRecord& record) {
  const auto doc = nlohmann::json::parse(record.value, nullptr, false);
  if (!doc.is_object()) return "";  // not a task: its handler dead-letters it
  const auto payload = doc.find("payload");
  if (payload == doc.end() || !payload->is_object()) return "";
  const auto tenant = payload->find("tenant");
  return tenant != payload->end() && tenant->is_string() ? tenant->get<std::string>() : std::string("default");
}

void DevFixWorker::add_fallback(std::unique_ptr<Generator> generator, LlmLimits limits) {
  const std::string name = "llm-fallback" + std::to_string(backends_.size()) + "-" + generator->model();
  backends_.push_back(
      {std::move(generator), &breakers_.get(name), std::make_unique<LlmRateLimiter>(name, limits, clock_)});
}

LlmRateLimiter* DevFixWorker::tenant_limiter(const std::string& tenant) {
  std::lock_guard lock(tenant_limiters_mu_);
  auto it = tenant_limiters_.find(tenant);
  if (it != tenant_limiters_.end()) return it->second.get();
  const LlmLimits& limits = limits_of_tenant(tenant);
  auto& slot = tenant_limiters_[tenant];
  if (limits.any()) slot = std::make_unique<LlmRateLimiter>("tenant:" + tenant, limits, clock_);
  return slot.get();
}

const LlmLimits& DevFixWorker::limits_of_tenant(const std::string& tenant) const {
  auto o = config_.tenant_overrides.find(tenant);
  return o != config_.tenant_overrides.end() ? o->second : config_.tenant_limits;
}

double DevFixWorker::tenant_weight(const std::string& tenant) const {
  auto it = config_.tenant_weights.find(tenant);
  return it == config_.tenant_weights.end() ? 1.0 : it->second;
}

std::chrono::milliseconds DevFixWorker::admit(const std::string& tenant) {
  if (tenant.empty()) return std::chrono::milliseconds(0);
  const auto admission = tenants_.try_acquire(tenant);
  if (admission) return std::chrono::milliseconds(0);
  metrics_->tenant_throttled->Increment();
  return std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(admission.retry_after));
}

std::optional<kafka::Failure> DevFixWorker::generate(const GenerationRequest& request,
                                                     cache::ResultCache::Result& result,
                                                     std::optional<GenerationError>& rejected) {
  const std::string key = cache::content_key(cache_namespace_, {{"backend", primary().backend()},
                                                                {"model", primary().model()},
                                                                {"max_tokens", request.max_tokens},
                                                                {"raw", request.raw_reply},
                                                                {"temperature_boost", request.temperature_boost},
                                                                {"system", request.system_prompt},
                                                                {"user", request.user_prompt}});
  try {
    result = cache_.get_or_compute(key, cache_namespace_, [&]() -> std::string {
      const bool small = batches_ && !request.raw_reply && request.max_tokens <= config_.batch_small_tokens;
      Generation g =
          small ? batches_->submit(request.task["job_id"].get<std::string>(), request) : call_backend({request}).at(0);
      if (g.finish_reason == "length" && !request.raw_reply) {
        // Thrown, not returned: a cut reply is not cached.
        throw GenerationError(
            GenerationError::Kind::kRejected,
            "the reply was cut at max_tokens (" + std::to_string(request.max_tokens) + "): not a complete file", {},
            "llm_truncated");
      }
      return nlohmann::json{{"content", g.content},
                            {"prompt_tokens", g.prompt_tokens},
                            {"completion_tokens", g.completion_tokens},
                            {"cost_usd", g.cost_usd},
                            {"model", g.model},
                            {"backend", g.backend},
                            {"finish_reason", g.finish_reason},
                            {"usage_estimated", g.usage_estimated}}
          .dump();
    });
  } catch (const Backoff& b) {
    return b.failure;
  } catch (const GenerationError& e) {
    if (e.kind() == GenerationError::Kind::kUnavailable) {
      // Once the breaker is open (this failure may have opened it) the backend is known to be
      // down: the record waits for it without spending a retry attempt, so an outage never
      // walks records through the retry tiers into the DLQ. Only failures while the breaker
      // still closes count as the record's attempts.
      resilience::Duration soonest = resilience::Duration::max();
      for (const auto& b : backends_) {
        if (b.breaker->state() == resilience::BreakerState::kClosed) {
          soonest = resilience::Duration::max();
          break;
        }
        soonest = std::min(soonest, b.breaker->retry_after());
      }
      if (soonest != resilience::Duration::max()) {
        return kafka::Failure::backoff("llm_unavailable", e.what(), clamp_wait(soonest));
      }
      return kafka::Failure::transient("llm_unavailable", e.what());
    }
    rejected = e;
  }
  return std::nullopt;
}

std::optional<kafka::Failure> DevFixWorker::handle_plan(const nlohmann::json& task, const kafka::InboundRecord& record,
                                                        kafka::Emitter& out) {
  const auto& payload = task["payload"];
  const bool replan = task["type"] == "REPLAN_TASK";
  const std::string kind = replan ? "replan" : "plan";
  GenerationRequest request = request_for(
      task, replan ? payload["path"].get<std::string>() : std::string("plan.json"), payload.value("plan_attempt", 0),
      payload.value("max_tokens", config_.plan_max_tokens), build_plan_prompt(task, config_.plan));
  request.raw_reply = true;
  request.reply_schema = plan_reply_schema(config_.plan.max_files);
  // A plan asked for again with its errors should not come back the same (temperature 0).
  request.temperature_boost = 0.3 * request.fix_attempt;
  const auto started = std::chrono::steady_clock::now();
  cache::ResultCache::Result result;
  std::optional<GenerationError> rejected;
  // A plan the submitter supplies (their own planner) is checked like a model's, without a call.
  const bool supplied = !replan && payload.contains("plan") && payload["plan"].is_object();
  if (supplied) {
    result.value = std::make_shared<const std::string>(
        nlohmann::json{{"content", payload["plan"].dump()}, {"model", "supplied"}}.dump());
  } else if (auto failure = generate(request, result, rejected)) {
    return failure;
  }

  nlohmann::json generated = rejected ? nlohmann::json::object() : nlohmann::json::parse(*result.value);
  const std::string reply = generated.value("content", "");
  PlanCheck check;
  if (rejected) {
    check.errors.push_back(std::string(rejected->what()).substr(0, 1000));
  } else {
    check = check_plan(reply, task, config_.plan);
    if (generated.value("finish_reason", "") == "length")
      check.errors.insert(check.errors.begin(), "the reply was cut at max_tokens (" +
                                                    std::to_string(request.max_tokens) + "): write a shorter plan");
  }
  const std::string suffix = (replan ? "-r" : "-") + std::to_string(request.fix_attempt);
  nlohmann::json event = {{"task_id", task["task_id"]},
                          {"job_id", task["job_id"]},
                          {"created_at", events::now_iso8601()},
                          {"payload", {{"goal", payload["goal"]}, {"plan_attempt", request.fix_attempt}}}};
  add_usage(event["payload"], generated, result.cached, started);
  charge_job(task, event["payload"]);
  for (const char* carried : {"tenant", "constraints", "max_tokens", "priority"}) {
    if (payload.contains(carried)) event["payload"][carried] = payload[carried];
  }
  if (replan) event["payload"]["replan_of"] = payload["path"];
  if (supplied) event["payload"]["supplied"] = true;
  if (check.ok()) {
    event["id"] = events::derived_id("pc-", task["task_id"].get<std::string>(), suffix);
    event["type"] = "PLAN_COMPLETED";
    event["payload"]["plan"] = std::move(check.plan);
  } else {
    event["id"] = events::derived_id("pr-", task["task_id"].get<std::string>(), suffix);
    event["type"] = "PLAN_REJECTED";
    event["payload"]["reply"] = reply.substr(0, 16384);
    nlohmann::json diagnostics = nlohmann::json::array();
    for (const auto& e : check.errors)
      diagnostics.push_back({{"message", e.substr(0, 4000)}, {"check", "plan"}, {"severity", "error"}});
    event["payload"]["diagnostics"] = std::move(diagnostics);
  }
  if (auto failure = validator_.validate_event(event)) {
    return kafka::Failure::bad_input("invalid_output", "the " + event["type"].get<std::string>() +
                                                           " built from the reply is invalid: " + failure->message);
  }
  out.emit(event_record(events_topic_, event, record));
  metrics_->tasks->Add({{"kind", kind},
                        {"outcome", !check.ok()     ? "rejected"
                                    : result.cached ? "cached"
                                                    : "completed"}})
      .Increment();
  return std::nullopt;
}

std::optional<kafka::Failure> DevFixWorker::handle_review(const nlohmann::json& task,
                                                          const kafka::InboundRecord& record, kafka::Emitter& out) {
  const auto& payload = task["payload"];
  const std::string path = payload["path"];
  const int attempt = payload.value("fix_attempt", 0);
  nlohmann::json findings = nlohmann::json::array();
  nlohmann::json usage = {{"prompt_tokens", 0}, {"completion_tokens", 0}, {"cost_usd", 0.0}, {"calls", 0}};
  std::vector<std::pair<std::string, std::string>> outcomes;  // reviewer, outcome
  for (const auto& r : payload["reviewers"]) {
    const std::string reviewer = r;
    GenerationRequest request = request_for(task, path, attempt, config_.review_max_tokens,
                                            build_review_prompt(task, reviewer, config_.context_budget_chars));
    request.task["payload"]["reviewer"] = reviewer;  // the template backend's reviewer
    request.raw_reply = true;
    request.reply_schema = review_reply_schema();
    cache::ResultCache::Result result;
    std::optional<GenerationError> rejected;
    // The backend down: the whole review waits (reviews already made come from the cache).
    if (auto failure = generate(request, result, rejected)) return failure;
    if (rejected) {
      findings.push_back(
          {{"file", path},
           {"severity", "warning"},
           {"check", "review:" + reviewer},
           {"message", "the " + reviewer + " review could not run: " + std::string(rejected->what()).substr(0, 500)}});
      outcomes.emplace_back(reviewer, "unavailable");
      continue;
    }
    const auto generated = nlohmann::json::parse(*result.value);
    usage["calls"] = usage["calls"].get<int>() + (result.cached ? 0 : 1);
    for (const char* k : {"prompt_tokens", "completion_tokens"})
      usage[k] = usage[k].get<std::int64_t>() + generated.value(k, std::int64_t{0});
    usage["cost_usd"] = usage["cost_usd"].get<double>() + generated.value("cost_usd", 0.0);
    bool readable = true;
    const auto found = parse_review(generated.value("content", ""), path, reviewer, &readable);
    bool error = false;
    for (const auto& d : found) {
      error = error || d["severity"] == "error";
      findings.push_back(d);
    }
    outcomes.emplace_back(reviewer, error ? "failed" : readable ? "passed" : "unreadable");
  }
  charge_job(task, usage);
  const bool failed =
      std::any_of(findings.begin(), findings.end(), [](const auto& d) { return d["severity"] == "error"; });
  nlohmann::json result_payload = payload;
  result_payload.erase("reviewers");
  result_payload["review"] = {{"reviewers", payload["reviewers"]}, {"findings", findings.size()}};
  for (auto& [k, v] : usage.items()) result_payload["review"][k] = v;
  nlohmann::json warnings = payload.value("warnings", nlohmann::json::array());
  if (failed) {
    // Errors first (the fix prompt leads with them), then the review's and the checks' warnings.
    nlohmann::json diagnostics = nlohmann::json::array();
    for (const auto& d : findings)
      if (d["severity"] == "error") diagnostics.push_back(d);
    for (const auto& d : findings)
      if (d["severity"] != "error") diagnostics.push_back(d);
    for (const auto& d : warnings) diagnostics.push_back(d);
    result_payload.erase("warnings");
    result_payload["diagnostics"] = std::move(diagnostics);
  } else {
    for (const auto& d : findings) warnings.push_back(d);
    if (!warnings.empty()) result_payload["warnings"] = std::move(warnings);
  }
  const std::string suffix = "-" + std::to_string(attempt) + "-rv";
  nlohmann::json event = {
      {"id", events::derived_id(failed ? "qf-" : "qp-", task["task_id"].get<std::string>(), suffix)},
      {"task_id", task["task_id"]},
      {"job_id", task["job_id"]},
      {"type", failed ? "QA_FAILED" : "QA_PASSED"},
      {"created_at", events::now_iso8601()},
      {"payload", std::move(result_payload)}};
  if (auto failure = validator_.validate_event(event)) {
    return kafka::Failure::bad_input(
        "invalid_output", "the reviewed " + event["type"].get<std::string>() + " is invalid: " + failure->message);
  }
  out.emit(event_record(events_topic_, event, record));
  for (const auto& [reviewer, outcome] : outcomes)
    metrics_->reviews->Add({{"reviewer", reviewer}, {"outcome", outcome}}).Increment();
  metrics_->tasks->Add({{"kind", "review"}, {"outcome", failed ? "rejected" : "completed"}}).Increment();
  return std::nullopt;
}

std::vector<Generation> DevFixWorker::call_backend(const std::vector<GenerationRequest>& requests) {
  std::int64_t reserve = 0;
  for (const auto& r : requests) {
    reserve += static_cast<std::int64_t>((r.system_prompt.size() + r.user_prompt.size()) / 4) + r.max_tokens;
  }
  // A call that can never fit a window (more tokens than a day's) is refused as the task's fault.
  auto too_large = [&](const std::string& whose) {
    return GenerationError(
        GenerationError::Kind::kRejected,
        "the call reserves " + std::to_string(reserve) + " tokens, more than " + whose + " allows in a whole window",
        {}, "llm_too_large");
  };
  // The tenant's own limits first: they hold only this tenant, whichever backend serves it. Its
  // budgets as every replica spent them (jobs.progress), then this replica's own windows.
  const std::string tenant = requests.front().task["payload"].value("tenant", "default");
  if (auto hold = budgets_.tenant_over(tenant, limits_of_tenant(tenant))) {
    metrics_->tenant_budget_holds->Add({{"tenant", tenant}}).Increment();
    throw Backoff{kafka::Failure::hold_key("tenant_budget_spent", hold->why, clamp_wait(hold->wait))};
  }
  LlmRateLimiter::Lease tenant_lease;
  if (auto* limiter = tenant_limiter(tenant)) {
    tenant_lease = limiter->try_acquire(reserve);
    if (!tenant_lease) {
      if (tenant_lease.refusal() == LlmRateLimiter::Refusal::kTooLarge) throw too_large("tenant " + tenant);
      throw Backoff{kafka::Failure::hold_key(
          "tenant_rate_limited",
          "tenant " + tenant + ": " + std::string(LlmRateLimiter::to_string(tenant_lease.refusal())),
          clamp_wait(tenant_lease.retry_after()))};
    }
  }
  // While the backends refuse calls, they go to the tenants in turn (TenantTurns); a tenant whose
  // turn it is not waits in place, the others go on.
  if (!turns_.may_try(tenant)) {
    throw Backoff{kafka::Failure::hold_key("llm_turn", "tenant " + tenant + " waits its turn at the LLM",
                                           std::chrono::milliseconds(50))};
  }
  // Then the backends in order (docs/llm-economics.md): one whose breaker is open, whose limits
  // are spent, that answers 429 or is unavailable is passed over for the next. If none serves,
  // the call waits for the earliest to have room again, or fails as unavailable.
  std::optional<kafka::Failure> wait;
  auto wait_at_most = [&](kafka::Failure f) {
    if (!wait || f.retry_after < wait->retry_after) wait = std::move(f);
  };
  std::optional<GenerationError> unavailable;
  bool fits_somewhere = false;
  for (auto& b : backends_) {
    const std::string& name = b.breaker->name();
    auto permit = b.breaker->try_acquire();
    if (!permit) {
      fits_somewhere = true;
      wait_at_most(kafka::Failure::backoff("breaker_open", "the " + name + " circuit breaker is open",
                                           clamp_wait(b.breaker->retry_after())));
      continue;
    }
    auto lease = b.limiter->try_acquire(reserve);
    if (!lease) {
      permit.ignore();
      if (lease.refusal() == LlmRateLimiter::Refusal::kTooLarge) continue;
      fits_somewhere = true;
      // A paced call waits exactly for its slot: the floor of other waits would slow the pace.
      const auto retry = lease.refusal() == LlmRateLimiter::Refusal::kPace
                             ? std::max(std::chrono::milliseconds(1),
                                        std::chrono::ceil<std::chrono::milliseconds>(lease.retry_after()))
                             : clamp_wait(lease.retry_after());
      wait_at_most(kafka::Failure::backoff(
          "rate_limited", name + ": local rate limit: " + std::string(LlmRateLimiter::to_string(lease.refusal())),
          retry));
      continue;
    }
    fits_somewhere = true;
    turns_.served(tenant);
    const auto call_start = std::chrono::steady_clock::now();
    // The limit is in use when the tasks running (each making at most one call at a time) fill it.
    const int in_flight = tasks_running_.load();
    ++calls_in_flight_;
    Running call{calls_in_flight_};
    try {
      std::vector<Generation> out = b.generator->generate_batch(requests);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - call_start).count();
      metrics_->call_seconds->Observe(seconds);
      permit.success();
      std::int64_t used = 0;
      std::int64_t completion = 0;
      for (auto& g : out) {
        used += g.prompt_tokens + g.completion_tokens;
        completion += g.completion_tokens;
        if (g.model.empty()) g.model = b.generator->model();
        g.backend = b.generator->backend();
        metrics_->prompt_tokens->Increment(static_cast<double>(g.prompt_tokens));
        metrics_->completion_tokens->Increment(static_cast<double>(g.completion_tokens));
        metrics_->cost->Increment(g.cost_usd);
      }
      // Seconds per 100 completion tokens: a long reply is not a slow backend.
      concurrency_.on_success(seconds * 100.0 / static_cast<double>(std::max<std::int64_t>(completion, 100)),
                              in_flight);
      if (!out.empty()) b.limiter->on_answer(out.front().feedback, lease.admitted_at(), reserve);
      lease.complete(used > 0 ? used : reserve);
      tenant_lease.complete(used > 0 ? used : reserve);
      metrics_->calls->Add({{"outcome", "ok"}, {"backend", name}}).Increment();
      if (requests.size() > 1) metrics_->batched_files->Increment(static_cast<double>(requests.size()));
      return out;
    } catch (const GenerationError& e) {
      switch (e.kind()) {
        case GenerationError::Kind::kRateLimited:
          permit.ignore();  // the backend is up; it asks us to slow down
          b.limiter->on_feedback(e.feedback());
          concurrency_.on_overload();
          metrics_->calls->Add({{"outcome", "rate_limited"}, {"backend", name}}).Increment();
          wait_at_most(kafka::Failure::backoff("llm_rate_limited", e.what(),
                                               clamp_wait(e.feedback().retry_after.value_or(std::chrono::seconds(1)))));
          continue;
        case GenerationError::Kind::kUnavailable:
          permit.failure();
          concurrency_.on_overload();  // a timeout or a 5xx: the backend takes less than we send
          metrics_->calls->Add({{"outcome", "unavailable"}, {"backend", name}}).Increment();
          unavailable = e;
          continue;
        case GenerationError::Kind::kRejected:
          permit.ignore();  // the task's own fault: another backend would not take it either
          metrics_->calls->Add({{"outcome", "rejected"}, {"backend", name}}).Increment();
          tenant_lease.cancel();
          throw;
      }
    }
  }
  tenant_lease.cancel();  // no call was answered
  if (!fits_somewhere) throw too_large("every backend's limit");
  if (unavailable && !wait) throw *unavailable;
  if (!wait) throw GenerationError(GenerationError::Kind::kUnavailable, "no backend could take the call");
  turns_.refused(tenant, wait->retry_after);
  throw Backoff{*wait};
}

nlohmann::json DevFixWorker::stats() {
  const auto c = cache_.stats();
  const auto cc = concurrency_.stats();
  auto backend_json = [](const Backend& backend) {
    const auto b = backend.breaker->snapshot();
    auto l = backend.limiter->stats();
    return nlohmann::json{
        {"name", backend.breaker->name()},
        {"backend", backend.generator->backend()},
        {"model", backend.generator->model()},
        {"breaker",
         {{"state", std::string(resilience::to_string(b.state))},
          {"failure_rate", b.failure_rate},
          {"slow_call_rate", b.slow_call_rate},
          {"times_opened", b.times_opened},
          {"not_permitted", b.not_permitted_calls},
          {"open_remaining_ms", std::chrono::duration_cast<std::chrono::milliseconds>(b.open_remaining).count()}}},
        {"limiter",
         {{"admitted", l.admitted},
          {"rejected", l.rejected},
          {"in_flight", l.in_flight},
          {"requests_last_minute", l.requests_in_window},
          {"requests_last_hour", l.requests_last_hour},
          {"tokens_last_minute", l.tokens_in_window},
          {"tokens_last_day", l.tokens_last_day},
          {"tokens_refunded", l.tokens_refunded}}}};
  };
  nlohmann::json backends = nlohmann::json::array();
  for (const auto& b : backends_) backends.push_back(backend_json(b));
  const auto& first = backends.front();
  return {
      {"backend", primary().backend()},
      {"model", primary().model()},
      {"breaker", first["breaker"]},
      {"limiter", first["limiter"]},
      {"backends", backends},
      {"cache",
       {{"hits", c.hits},
        {"misses", c.misses},
        {"hit_rate", c.hit_rate()},
        {"entries", c.entries},
        {"evictions", c.evictions},
        {"expirations", c.expirations},
        {"invalidations", c.invalidations},
        {"single_flight_shared", c.single_flight_shared}}},
      {"concurrency",
       {{"limit", cc.limit},
        {"min", config_.concurrency.min_limit},
        {"max", config_.concurrency.max_limit},
        {"calls_in_flight", calls_in_flight_.load()},
        {"latency_baseline", cc.baseline},
        {"latency_recent", cc.recent}}},
      {"batches", {{"calls", batches_ ? batches_->batches() : 0}, {"files", batches_ ? batches_->batched_files() : 0}}},
      {"tenants",
       {{"admitted", tenants_.admitted()},
        {"throttled", tenants_.rejected()},
        {"keys", tenants_.keys()},
        {"limited", tenant_limits_json()}}}};
}

nlohmann::json DevFixWorker::tenant_limits_json() {
  nlohmann::json out = nlohmann::json::object();
  std::lock_guard lock(tenant_limiters_mu_);
  // Every tenant seen with limits or budgets (a tenant with budgets alone has no limiter).
  for (const auto& [tenant, limiter] : tenant_limiters_) {
    if (limiter) {
      const auto s = limiter->stats();
      out[tenant] = {{"requests_last_minute", s.requests_in_window},
                     {"requests_last_hour", s.requests_last_hour},
                     {"tokens_last_minute", s.tokens_in_window},
                     {"tokens_last_day", s.tokens_last_day},
                     {"refused", s.rejected}};
    }
    if (limits_of_tenant(tenant).has_budget()) {
      const auto shared = budgets_.tenant_spent(tenant);
      out[tenant]["spent_by_all_replicas"] = {{"tokens_last_day", shared.tokens_day},
                                              {"tokens_last_30_days", shared.tokens_month},
                                              {"usd_last_day", shared.usd_day},
                                              {"usd_last_30_days", shared.usd_month}};
    }
  }
  return out;
}

std::pair<int, std::string> DevFixWorker::invalidate(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return {400, R"({"error":"expected {\"key\":...} or {\"namespace\":...}"})"};
  if (doc.contains("key") && doc["key"].is_string()) {
    return {200, nlohmann::json{{"invalidated", cache_.invalidate(doc["key"].get<std::string>()) ? 1 : 0}}.dump()};
  }
  if (doc.contains("namespace") && doc["namespace"].is_string()) {
    return {200,
            nlohmann::json{{"invalidated", cache_.invalidate_namespace(doc["namespace"].get<std::string>())}}.dump()};
  }
  return {400, R"({"error":"expected {\"key\":...} or {\"namespace\":...}"})"};
}

void DevFixWorker::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  breakers_.append_metrics(families);
  for (const auto& b : backends_) b.limiter->append_metrics(families);
  tenants_.append_metrics(families);
  concurrency_.append_metrics(families);
  std::lock_guard lock(tenant_limiters_mu_);
  for (const auto& [tenant, limiter] : tenant_limiters_)
    if (limiter) limiter->append_metrics(families);
  cache_.append_metrics(families);
}

}  // namespace agentline::devfix
