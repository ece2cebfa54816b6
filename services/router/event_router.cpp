#include "event_router.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "agentline/events/ids.h"
#include "agentline/events/path_policy.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::router {
namespace {

std::string first_diagnostic(const nlohmann::json& payload) {
  if (!payload.contains("diagnostics") || !payload["diagnostics"].is_array() || payload["diagnostics"].empty())
    return "";
  const auto& d = payload["diagnostics"][0];
  std::string out = d.value("message", "");
  if (d.contains("line") && d["line"].is_number_integer())
    out = "line " + std::to_string(d["line"].get<int>()) + ": " + out;
  return out;
}

// A job check carries the whole job in one record (qa.requests allows 4 MiB: topics/catalog.json).
constexpr std::size_t kMaxJobCheckBytes = 3584 * 1024;

// A task or event: the envelope every message on the topics has (schemas/).
nlohmann::json message(const std::string& id, const std::string& task_id, const std::string& job_id,
                       const std::string& type, nlohmann::json payload) {
  return {{"id", id},
          {"task_id", task_id},
          {"job_id", job_id},
          {"type", type},
          {"created_at", events::now_iso8601()},
          {"payload", std::move(payload)}};
}

// A FIX_TASK for the file at `fix_attempt`, carrying what its last event carried (tenant,
// priority, language, context, limits).
nlohmann::json fix_task(const std::string& job, const std::string& task_id, const std::string& path,
                        const nlohmann::json& carried_from, int fix_attempt, nlohmann::json diagnostics,
                        const std::string& previous_content) {
  nlohmann::json fix = message("fix-" + task_id + "-" + std::to_string(fix_attempt), task_id, job, "FIX_TASK",
                               {{"path", path},
                                {"description", carried_from.value("description", "Fix " + path)},
                                {"fix_attempt", fix_attempt},
                                {"previous_content", previous_content},
                                {"diagnostics", std::move(diagnostics)}});
  for (const char* carried :
       {"tenant", "priority", "language", "context_files", "max_tokens", "parent_id", "submitted_at_ms"}) {
    if (carried_from.contains(carried)) fix["payload"][carried] = carried_from[carried];
  }
  return fix;
}

}  // namespace

EventRouter::EventRouter(const kafka::TopicCatalog& catalog, RoutingTable table, prometheus::Registry& registry,
                         std::size_t dedup_window, JobCheckOptions job_checks)
    : table_(std::move(table)),
      submitted_topic_(catalog.topic("tasks.submitted")),
      dlq_topic_(catalog.dlq_topic()),
      progress_topic_(catalog.topic("jobs.progress")),
      plans_topic_(catalog.topic("jobs.plans")),
      fix_topic_(catalog.topic("tasks.fix")),
      deploy_topic_(catalog.topic("deploy.requests")),
      escalations_topic_(catalog.topic("escalations")),
      qa_topic_(catalog.topic("qa.requests")),
      job_checks_(job_checks),
      dead_letters_("router", "router", {}, catalog.dlq_topic()),
      dedup_window_(dedup_window) {
  std::random_device random;
  char id[40];
  std::snprintf(id, sizeof id, "router-%08x%08x", random(), random());
  origin_ = id;
  routed_ = &observability::counter(
      registry, "agentline_router_routed_total",
      "Events routed, by event type and destination (qa.requests, deploy.requests, tasks.fix, dlq, progress)");
  failed_ =
      &observability::counter(registry, "agentline_router_failed_total", "Events the router dead-lettered, by reason");
  duplicates_ =
      &observability::counter(registry, "agentline_router_duplicates_total", "Redelivered events dropped by id")
           .Add({});
  dead_letters_seen_ =
      &observability::counter(registry, "agentline_router_dead_letters_seen_total",
                              "DLQ records read, by whether they named a job's file (shown: on the job's "
                              "progress; no_file: nothing to show)");
  reviews_requested_ = &observability::counter(registry, "agentline_router_reviews_requested_total",
                                               "Model reviews asked for, by reviewer");
  review_calls_saved_ =
      &observability::counter(registry, "agentline_router_review_calls_saved_total",
                              "Reviewer calls not made because the review rules chose other reviewers or none")
           .Add({});
  failure_ratio_ = &observability::gauge(registry, "agentline_router_failure_ratio",
                                         "Dead-lettered over all events handled since start (the seed's failure rate)")
                        .Add({});
}

bool EventRouter::first_sight(const std::string& id) {
  std::lock_guard lock(dedup_mu_);
  if (!seen_.insert(id).second) return false;
  seen_order_.push_back(id);
  if (seen_order_.size() > dedup_window_) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  return true;
}

void EventRouter::count(bool failed, const std::string& label_a, const std::string& label_b) {
  if (failed) {
    failed_->Add({{"reason", label_a}}).Increment();
  } else {
    routed_->Add({{"type", label_a}, {"destination", label_b}}).Increment();
  }
  std::lock_guard lock(stats_mu_);
  (failed ? failed_count_ : routed_count_) += 1;
  failure_ratio_->Set(failed_count_ / (failed_count_ + routed_count_));
}

void EventRouter::publish(kafka::Emitter& out, const std::string& job_id, const JobProgress::Update& update) {
  // The job's summary and the file's record (see job_progress.h): both small, whatever the
  // job's size. Made from the job's state when they are produced: a coalesced one never is.
  const auto value_of = [](const std::optional<nlohmann::json>& doc) -> std::optional<std::string> {
    return doc ? std::optional(events::record_value(*doc)) : std::nullopt;
  };
  if (update.summary) {
    publish_progress(out, progress_record(job_id),
                     [this, job_id, value_of] { return value_of(progress_.summary(job_id)); });
  }
  if (update.file) {
    publish_progress(out, progress_record(job_id + "/" + update.path),
                     [this, job_id, path = update.path, value_of] { return value_of(progress_.file(job_id, path)); });
  }
}

kafka::OutgoingRecord EventRouter::progress_record(std::string key) const {
  auto r = events::make_record(progress_topic_, std::move(key), nullptr, nullptr);
  r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
  return r;
}

void EventRouter::publish_progress(kafka::Emitter& out, kafka::OutgoingRecord record,
                                   CoalescingPublisher::Render render) {
  if (progress_publisher_) {
    progress_publisher_->publish(std::move(record), out.hold(), std::move(render));
    return;
  }
  if (render) {
    auto value = render();
    if (!value) return;
    record.value = std::move(*value);
  }
  out.emit(std::move(record));
}

std::optional<kafka::Failure> EventRouter::handle_task(const kafka::InboundRecord& record, kafka::Emitter& out) {
  // Invalid tasks are priority-assigner's to dead-letter; here they are only not counted.
  nlohmann::json task;
  if (events::MessageValidator::parse(record.value, task) || validator_.validate_task(task)) return std::nullopt;
  const std::string type = task["type"];
  if ((type != "DEV_TASK" && type != "PLAN_TASK") || !first_sight("task:" + task["id"].get<std::string>()))
    return std::nullopt;
  const std::string job = task["job_id"].get<std::string>();
  auto lock = progress_.lock(job);
  const std::string path = task["payload"].value("path", "");
  if (const auto tenant = task["payload"].find("tenant"); tenant != task["payload"].end() && tenant->is_string())
    progress_.set_tenant(job, tenant->get<std::string>());
  // The job's budget: the first of its tasks that carries one sets it (agentline budget
  // changes it later).
  if (const auto budget = task["payload"].find("budget");
      budget != task["payload"].end() && !progress_.has_section(job, "budget")) {
    publish(out, job, progress_.set_section(job, "budget", *budget, true));
  }
  if (type == "DEV_TASK" && gate_.planned(job, path)) {
    emit_gate(out, job, gate_.confirm(job, path, task["task_id"]), record);
  }
  if (type == "PLAN_TASK") {
    if (!gate_.has_plan(job)) {
      publish(out, job, progress_.set_plan(job, {{"status", "planning"}, {"goal", task["payload"]["goal"]}}));
    }
    return std::nullopt;
  }
  publish(out, job, progress_.apply(job, task["task_id"], task["payload"]["path"], JobProgress::Step::kSubmitted));
  return std::nullopt;
}

int EventRouter::expire_jobs(kafka::Emitter& out, const std::string& older_than) {
  auto tombstone = [&](const std::string& topic, const std::string& key) {
    kafka::OutgoingRecord r;
    r.topic = topic;
    r.key = key;
    r.tombstone = true;
    r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
    return r;
  };
  const auto expired = progress_.expire(older_than);
  for (const auto& [job, keys] : expired) {
    auto lock = progress_.lock(job);
    for (const auto& key : gate_.forget(job)) out.emit(tombstone(plans_topic_, key));
    // Through the publisher too, so that no value of the key still waiting there follows it.
    for (const auto& key : keys) publish_progress(out, tombstone(progress_topic_, key));
  }
  return static_cast<int>(expired.size());
}

std::optional<kafka::Failure> EventRouter::handle_dead_letter(const kafka::InboundRecord& record, kafka::Emitter& out) {
  auto seen = [&](const char* outcome) {
    dead_letters_seen_->Add({{"outcome", outcome}}).Increment();
    return std::nullopt;
  };
  const auto message = nlohmann::json::parse(record.value, nullptr, false);
  if (!message.is_object() || !message.contains("payload") || !message["payload"].is_object()) return seen("no_file");
  const auto text = [](const nlohmann::json& o, const char* key) {
    const auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string job = text(message, "job_id");
  const std::string task_id = text(message, "task_id");
  const std::string type = text(message, "type");
  const auto& payload = message["payload"];
  const std::string path = text(payload, "path");
  // A job id names the job's records (key <job_id>/<path>): one that cannot be a job is not shown.
  if (job.empty() || job.size() > 256 || job.find('/') != std::string::npos || events::unsafe_id_reason(job))
    return seen("no_file");
  std::string reason(record.header(kafka::headers::kErrorClass).value_or("dead_lettered"));
  if (auto why = record.header(kafka::headers::kErrorMessage)) reason += ": " + std::string(*why);
  auto lock = progress_.lock(job);
  if (type == "PLAN_TASK") {
    if (gate_.has_plan(job)) return seen("no_file");
    publish(out, job,
            progress_.set_plan(job,
                               {{"status", "dead_lettered"}, {"goal", payload.value("goal", "")}, {"reason", reason}}));
    return seen("shown");
  }
  if (path.empty() || path.size() > 4096) return seen("no_file");
  if (reason.rfind("duplicate_path", 0) == 0) {
    // The path belongs to another task of the job, whose state it shows: the refused task is
    // listed on the job instead (summary "refused": {task_id: {path, reason}}).
    publish(out, job, progress_.set_section(job, "refused", {{task_id, {{"path", path}, {"reason", reason}}}}));
    return seen("shown");
  }
  const auto attempt = payload.find("fix_attempt");
  const int fix_attempt = attempt != payload.end() && attempt->is_number_integer() ? attempt->get<int>() : -1;
  const bool was_open = !progress_.ended(job, path);
  const auto update = progress_.apply(job, task_id, path, JobProgress::Step::kDeadLettered, reason, fix_attempt);
  publish(out, job, update);
  // A planned file the gate still waits for has failed: its dependants and the job check go on.
  if (update.file && was_open && gate_.planned(job, path)) emit_gate(out, job, gate_.failed(job, path, reason), record);
  return seen("shown");
}

std::optional<kafka::Failure> EventRouter::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  if (record.topic == submitted_topic_) return handle_task(record, out);
  if (record.topic == dlq_topic_) {
    // Whatever happens here, a DLQ record never goes back to the DLQ (it would come round again).
    try {
      return handle_dead_letter(record, out);
    } catch (const std::exception&) {
      dead_letters_seen_->Add({{"outcome", "unreadable"}}).Increment();
      return std::nullopt;
    }
  }
  // The envelope says where an event goes; most events need nothing more (docs/design.md#messages).
  events::EventEnvelope envelope;
  if (auto failure = validator_.read_envelope(record.value, envelope)) {
    count(true, failure->error_class, "");
    return failure;
  }
  // A replay from the DLQ is a deliberate second delivery: it is told apart by its count.
  std::string dedup_key = envelope.id;
  if (auto replay = record.header(kafka::headers::kReplayCount)) dedup_key += "#replay-" + std::string(*replay);
  if (!first_sight(dedup_key)) {
    duplicates_->Increment();
    return std::nullopt;
  }
  const std::string& type = envelope.type;
  const std::string& job = envelope.job_id;
  const std::string& task_id = envelope.task_id;
  const std::string& path = envelope.path;
  const bool replay = record.header(kafka::headers::kReplayCount).has_value();
  // The whole event, for the steps that read more than its envelope: parsed, and checked
  // against its schema, only then.
  nlohmann::json event;
  auto read_whole = [&]() -> std::optional<kafka::Failure> {
    auto failure = events::MessageValidator::parse(record.value, event);
    if (!failure) failure = validator_.validate_event(event);
    if (failure) count(true, failure->error_class, "");
    return failure;
  };
  const bool whole_needed = type == "JOB_BUDGET_SET" || type == "PLAN_COMPLETED" || type == "PLAN_REJECTED" ||
                            type == "JOB_QA_PASSED" || type == "JOB_QA_FAILED";
  if (whole_needed) {
    if (auto failure = read_whole()) return failure;
  }
  if (type == "JOB_BUDGET_SET") {
    auto lock = progress_.lock(job);
    publish(out, job, progress_.set_section(job, "budget", event["payload"]["budget"], true));
    count(false, type, "progress");
    return std::nullopt;
  }
  if (type == "PLAN_COMPLETED" || type == "PLAN_REJECTED") return handle_plan_event(event, record, out);
  if (type == "JOB_QA_PASSED" || type == "JOB_QA_FAILED") return handle_job_check(event, record, out);
  const auto route = table_.route(type);
  if (!route) {
    count(true, "unrouted_event_type", "");
    return kafka::Failure::bad_input("unrouted_event_type", "no route for " + type + " in the routing table");
  }
  using Step = JobProgress::Step;
  const bool planned = gate_.planned(job, path);
  const bool to_review = type == "QA_PASSED" && reviews_ && !envelope.reviewed;
  // Forwarded and progress-only events are handled from the envelope, unless a planned file's
  // pass (held for its job check, with its content), a review, or an upload's error needs more.
  const bool envelope_only = route->kind == Route::Kind::kForward ? !to_review && !(type == "QA_PASSED" && planned)
                             : route->kind == Route::Kind::kProgressOnly ? type != "UPLOAD_FAILED"
                                                                         : false;
  if (!envelope_only) {
    if (auto failure = read_whole()) return failure;
  }
  static const nlohmann::json kNoPayload = nlohmann::json::object();
  const nlohmann::json& payload = event.is_null() ? kNoPayload : event["payload"];
  const auto charge = JobProgress::Charge::of(type == "FILE_COMPLETED" ? envelope.usage : envelope.review_usage);
  if (to_review && send_to_review(event, record, out)) {
    count(false, type, "review");
    return std::nullopt;
  }
  const auto content = payload.find("content");
  const std::string no_content;
  const std::string& text =
      content != payload.end() && content->is_string() ? content->get_ref<const std::string&>() : no_content;
  // A planned job's passed files wait for its job check (docs/qa.md), unless the job check has
  // ended already (a replayed file) or the file is too large to hold.
  bool hold = false;
  if (type == "QA_PASSED" && job_checks_.enabled && !job_checks_.deliver_before && planned &&
      text.size() <= DependencyGate::kHoldBytes) {
    const auto check = gate_.job_check(job);
    const std::string state = check.is_object() ? check.value("state", "") : "";
    hold = state != "passed" && state != "failed" && state != "skipped";
  }
  if (route->kind == Route::Kind::kForward && !hold) {
    // Forwarded as received (its envelope checked, unchanged; the service that reads it checks
    // the rest): no second serialization of the content.
    // Outside the job's lock: only the progress records need its order.
    const std::string key = type == "QA_PASSED" ? job : task_id;
    kafka::OutgoingRecord forward = events::make_record(route->topic, key, nlohmann::json(), &record);
    forward.value = record.value;
    out.emit(std::move(forward));
  }
  auto lock = progress_.lock(job);
  switch (route->kind) {
    case Route::Kind::kForward: {
      const Step step = type == "FILE_COMPLETED" ? Step::kGenerated
                        : type == "QA_PASSED"    ? Step::kQaPassed
                                                 : Step::kGenerated;
      publish(out, job, progress_.apply(job, task_id, path, step, "", envelope.fix_attempt, nullptr, replay, charge));
      if (type == "QA_PASSED" && planned) {
        nlohmann::json delivery = {{"id", event["id"]}, {"task_id", task_id}, {"payload", nlohmann::json::object()}};
        for (const auto& [key, value] : payload.items()) {
          if (key != "content") delivery["payload"][key] = value;  // the content is kept beside it once
        }
        if (!hold) delivery["delivered"] = true;
        emit_gate(out, job, gate_.passed(job, path, text, std::move(delivery)), record);
      }
      count(false, type, hold ? "held" : route->topic);
      return std::nullopt;
    }
    case Route::Kind::kFix: {
      const int attempt = envelope.fix_attempt;
      progress_.apply(job, task_id, path, Step::kQaFailed, "", attempt, nullptr, replay, charge);
      if (attempt >= table_.fix_limit()) {
        if (planned && replan(event, record, out)) return std::nullopt;
        const std::string diagnostic = first_diagnostic(payload);
        const std::string why = "QA still failed after " + std::to_string(attempt) + " fix(es): " + diagnostic;
        const std::string reason = "qa_failed_max: " + diagnostic;
        publish(out, job, progress_.apply(job, task_id, path, Step::kDeadLettered, reason, -1, nullptr, replay));
        if (planned) emit_gate(out, job, gate_.failed(job, path, reason), record);
        count(true, "qa_failed_max", "");
        return kafka::Failure::bad_input("qa_failed_max", why);
      }
      nlohmann::json fix = fix_task(job, task_id, path, payload, attempt + 1,
                                    payload.contains("diagnostics") ? payload["diagnostics"] : nlohmann::json::array(),
                                    payload.value("content", ""));
      if (planned) {
        // The job's context as it is now: the plan, the dependencies' and dependants' content.
        nlohmann::json context = gate_.context_for(job, path, true);
        for (auto& [k, v] : context.items()) fix["payload"][k] = std::move(v);
      }
      if (auto failure = validator_.validate_task(fix)) {
        count(true, "invalid_fix_task", "");
        return kafka::Failure::bad_input("invalid_fix_task",
                                         "the fix task built from this QA_FAILED is invalid: " + failure->message);
      }
      out.emit(events::make_record(route->topic, task_id, fix, &record));
      publish(out, job, progress_.apply(job, task_id, path, Step::kFixRequested, "", attempt + 1, nullptr, replay));
      count(false, type, route->topic);
      return std::nullopt;
    }
    case Route::Kind::kDeadLetter: {
      const std::string error_class = payload.value("error_class", "file_failed");
      const std::string reason = error_class + ": " + payload.value("error", "");
      publish(out, job, progress_.apply(job, task_id, path, Step::kDeadLettered, reason, -1, nullptr, replay));
      if (planned) emit_gate(out, job, gate_.failed(job, path, reason), record);
      count(true, type == "FILE_FAILED" ? "file_failed" : type, "");
      return kafka::Failure::bad_input(type == "FILE_FAILED" ? "file_failed" : "routed_to_dlq",
                                       error_class + ": " + payload.value("error", type));
    }
    case Route::Kind::kProgressOnly: {
      if (path.empty()) {
        // A structural item (epic, story, ...) is delivered too, but it is not a file of the job.
      } else if (type == "UPLOADED") {
        publish(out, job, progress_.apply(job, task_id, path, Step::kDelivered, "", -1, nullptr, replay));
      } else if (type == "UPLOAD_FAILED") {
        publish(
            out, job,
            progress_.apply(job, task_id, path, Step::kUploadFailed, payload.value("error", ""), -1, nullptr, replay));
      }
      count(false, type, "progress");
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool EventRouter::send_to_review(const nlohmann::json& event, const kafka::InboundRecord& record, kafka::Emitter& out) {
  const std::string job = event["job_id"];
  const std::string task_id = event["task_id"];
  const auto& payload = event["payload"];
  const std::string path = payload.value("path", "");
  const auto reviewers = reviews_->reviewers_for(path, payload.value("content", ""), gate_.dependants(job, path));
  review_calls_saved_->Increment(static_cast<double>(reviews_->size() - reviewers.size()));
  if (reviewers.empty()) return false;
  const int attempt = payload.value("fix_attempt", 0);
  nlohmann::json task =
      message(events::derived_id("rev-", task_id, "-" + std::to_string(attempt)), task_id, job, "REVIEW_TASK", payload);
  task["payload"]["reviewers"] = reviewers;
  if (!task["payload"].contains("description")) task["payload"]["description"] = "Review " + path;
  task["payload"].erase("diagnostics");
  if (validator_.validate_task(task)) return false;  // reviewed by nobody rather than lost
  out.emit(events::make_record(fix_topic_, task_id, task, &record));
  for (const auto& r : reviewers) reviews_requested_->Add({{"reviewer", r}}).Increment();
  return true;
}

void EventRouter::emit_plan_records(kafka::Emitter& out,
                                    const std::vector<std::pair<std::string, nlohmann::json>>& records,
                                    const kafka::InboundRecord& cause) {
  for (const auto& [key, value] : records) {
    kafka::OutgoingRecord r = events::make_record(plans_topic_, key, value, &cause);
    r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
    out.emit(std::move(r));
  }
}

void EventRouter::emit_gate(kafka::Emitter& out, const std::string& job_id, DependencyGate::Output output,
                            const kafka::InboundRecord& cause) {
  for (auto& [key, value] : output.records) {
    kafka::OutgoingRecord r = events::make_record(plans_topic_, key, value, &cause);
    r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
    out.emit(std::move(r));
  }
  // A released task that is somehow invalid is still published: priority-assigner dead-letters
  // it with the reason, as it does any task.
  for (auto& task : output.tasks) {
    const std::string task_id = task["task_id"];
    const std::string path = task["payload"]["path"];
    kafka::OutgoingRecord r = events::make_record(submitted_topic_, task_id, task, &cause);
    r.headers.push_back({std::string(kafka::headers::kSchema), std::string(events::kTaskSchemaId)});
    out.emit(std::move(r));
    publish(out, job_id, progress_.apply(job_id, task_id, path, JobProgress::Step::kReleased));
    count(false, "RELEASED", submitted_topic_);
  }
  check_job_if_ready(out, job_id, cause);
}

void EventRouter::check_job_if_ready(kafka::Emitter& out, const std::string& job_id,
                                     const kafka::InboundRecord& cause) {
  if (!job_checks_.enabled) return;
  const nlohmann::json state = gate_.job_check(job_id);
  const std::string now = state.is_object() ? state.value("state", "") : "";
  if (now == "running" || now == "passed" || now == "failed" || now == "skipped") return;
  const auto files = gate_.ended_files(job_id);
  if (!files || files->empty()) return;  // files still on their way, or none passed
  const int attempt = state.is_object() ? state.value("attempt", 0) : 0;
  auto set_state = [&](const nlohmann::json& job_check) { show_job_check(out, job_id, job_check, cause); };
  std::string why_not;
  std::string value = job_check_request(job_id, attempt, *files, why_not);
  if (!why_not.empty()) {
    set_state({{"state", "skipped"}, {"attempt", attempt}, {"reason", why_not}});
    if (!job_checks_.deliver_before) deliver_held(out, job_id, *files, {}, cause);
    count(false, "JOB_CHECK_SKIPPED", "progress");
    return;
  }
  kafka::OutgoingRecord r = events::make_record(qa_topic_, job_id, nlohmann::json(), &cause);
  r.value = std::move(value);
  out.emit(std::move(r));
  set_state({{"state", "running"}, {"attempt", attempt}, {"files", files->size()}});
  count(false, "JOB_CHECK_REQUESTED", qa_topic_);
}

void EventRouter::show_job_check(kafka::Emitter& out, const std::string& job_id, const nlohmann::json& shown,
                                 const kafka::InboundRecord& cause) {
  // The gate keeps what decisions need (state, attempt); the job's progress shows the rest.
  const nlohmann::json stored = {{"state", shown.value("state", "")}, {"attempt", shown.value("attempt", 0)}};
  emit_plan_records(out, gate_.set_job_check(job_id, stored).records, cause);
  publish(out, job_id, progress_.set_section(job_id, "job_check", shown, true));
}

std::string EventRouter::job_check_request(const std::string& job_id, int attempt,
                                           const std::vector<nlohmann::json>& files, std::string& why_not) const {
  // One record carries the whole job: a file too large to hold, or a job too large for one
  // record, is not checked as a whole; its files are delivered as they are.
  nlohmann::json assembled = nlohmann::json::array();
  for (const auto& f : files) {
    if (f.value("content_cut", false)) why_not = f.value("path", "") + " is larger than a job check holds";
    assembled.push_back(
        {{"path", f.value("path", "")}, {"content", f.value("content", "")}, {"task_id", f.value("task_id", "")}});
  }
  nlohmann::json request = message(events::derived_id("jc-", job_id, "-" + std::to_string(attempt)),
                                   events::derived_id("", job_id, ":job-check"), job_id, "JOB_CHECK_REQUESTED",
                                   {{"job_check_attempt", attempt}, {"files", std::move(assembled)}});
  if (const auto plan = gate_.plan(job_id); plan && plan->contains("tenant"))
    request["payload"]["tenant"] = (*plan)["tenant"];
  std::string value = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (why_not.empty() && value.size() > kMaxJobCheckBytes) {
    why_not = "the job (" + std::to_string(value.size()) + " bytes as one record) is more than a job check carries (" +
              std::to_string(kMaxJobCheckBytes) + ")";
  }
  if (auto failure = validator_.validate_event(request); failure && why_not.empty())
    why_not = "the job check request is invalid: " + failure->message;
  return value;
}

int EventRouter::resend_job_checks(kafka::Emitter& out) {
  int sent = 0;
  for (const auto& job_id : gate_.jobs_with_job_check("running")) {
    auto lock = progress_.lock(job_id);
    const nlohmann::json state = gate_.job_check(job_id);
    const auto files = gate_.ended_files(job_id);
    if (!files || files->empty() || !state.is_object()) continue;
    std::string why_not;
    std::string value = job_check_request(job_id, state.value("attempt", 0), *files, why_not);
    if (!why_not.empty()) continue;  // it was sent, so it was within bounds
    kafka::OutgoingRecord r = events::make_record(qa_topic_, job_id, nlohmann::json(), nullptr);
    r.value = std::move(value);
    out.emit(std::move(r));
    ++sent;
  }
  return sent;
}

void EventRouter::deliver_held(kafka::Emitter& out, const std::string& job_id, const std::vector<nlohmann::json>& files,
                               const std::set<std::string>& skip, const kafka::InboundRecord& cause) {
  for (const auto& f : files) {
    const std::string path = f.value("path", "");
    const auto& delivery = f.contains("delivery") ? f["delivery"] : nlohmann::json();
    // Delivered already: forwarded when it passed (too large to hold, or the job check had ended).
    if (skip.count(path) || !delivery.is_object() || delivery.value("delivered", false)) continue;
    nlohmann::json event = message(delivery.value("id", ""), delivery.value("task_id", ""), job_id, "QA_PASSED",
                                   delivery.value("payload", nlohmann::json::object()));
    event["payload"]["content"] = f.value("content", "");
    if (validator_.validate_event(event)) continue;  // it was valid when it passed
    out.emit(events::make_record(deploy_topic_, job_id, event, &cause));
    count(false, "QA_PASSED", deploy_topic_);
  }
}

std::optional<kafka::Failure> EventRouter::handle_job_check(const nlohmann::json& event,
                                                            const kafka::InboundRecord& record, kafka::Emitter& out) {
  const std::string type = event["type"];
  const std::string job = event["job_id"];
  const auto& payload = event["payload"];
  const int attempt = payload.value("job_check_attempt", 0);
  using Step = JobProgress::Step;
  auto lock = progress_.lock(job);
  const nlohmann::json state = gate_.job_check(job);
  const bool out_now =
      state.is_object() && state.value("state", "") == "running" && state.value("attempt", -1) == attempt;
  const auto files = out_now ? gate_.ended_files(job) : std::nullopt;  // copied only for a check that is out
  if (!files) {
    duplicates_->Increment();  // a redelivered result, or one for a check that is not out
    return std::nullopt;
  }
  const auto diagnostics = payload.value("diagnostics", nlohmann::json::array());
  nlohmann::json shown = nlohmann::json::array();
  for (const auto& d : diagnostics) {
    if (shown.size() < 20) shown.push_back(d);
  }
  nlohmann::json summary = {{"attempt", attempt},
                            {"checks", payload.value("checks", nlohmann::json::array())},
                            {"diagnostics", shown},
                            {"duration_ms", payload.value("duration_ms", 0)}};
  auto set_state = [&](const std::string& s, const nlohmann::json& extra) {
    nlohmann::json shown_state = summary;
    shown_state["state"] = s;
    for (const auto& [key, value] : extra.items()) shown_state[key] = value;
    show_job_check(out, job, shown_state, record);
  };
  if (type == "JOB_QA_PASSED") {
    set_state("passed", nlohmann::json::object());
    if (!job_checks_.deliver_before) deliver_held(out, job, *files, {}, record);
    count(false, type, deploy_topic_);
    return std::nullopt;
  }
  // The errors, by the file of the job they name.
  std::map<std::string, const nlohmann::json*> by_path;
  for (const auto& f : *files) by_path[f.value("path", "")] = &f;
  std::map<std::string, nlohmann::json> named;  // path -> its diagnostics (errors first)
  for (const auto& d : diagnostics) {
    const std::string file = d.value("file", "");
    if (by_path.count(file) && d.value("severity", "error") == "error") named[file].push_back(d);
  }
  for (const auto& d : diagnostics) {
    const std::string file = d.value("file", "");
    if (named.count(file) && d.value("severity", "error") != "error") named[file].push_back(d);
  }
  auto first_error = [](const nlohmann::json& list) {
    const auto& d = list.at(0);
    return (d.contains("line") ? "line " + d["line"].dump() + ": " : std::string()) + d.value("message", "");
  };
  if (named.empty()) {
    // Nothing a fix could be sent to: the job is marked, and its files are delivered as they are.
    const std::string why = "job_qa_failed: the job check failed without naming a file of the job" +
                            (diagnostics.empty() ? std::string() : ": " + diagnostics[0].value("message", ""));
    set_state("failed", {{"reason", why}});
    if (!job_checks_.deliver_before) deliver_held(out, job, *files, {}, record);
    count(true, "job_qa_failed", "");
    return kafka::Failure::bad_input("job_qa_failed", why);
  }
  if (attempt < table_.job_fix_limit()) {
    for (const auto& [path, diags] : named) {
      const nlohmann::json& f = *by_path[path];
      const nlohmann::json dp =
          f.contains("delivery") ? f["delivery"].value("payload", nlohmann::json::object()) : nlohmann::json::object();
      const std::string task_id = f.value("task_id", "");
      const int fix_attempt = dp.value("fix_attempt", 0) + 1;
      nlohmann::json all = diags;
      for (const auto& w : dp.value("warnings", nlohmann::json::array())) all.push_back(w);
      nlohmann::json fix = fix_task(job, task_id, path, dp, fix_attempt, std::move(all), f.value("content", ""));
      fix["payload"]["job_check_attempt"] = attempt + 1;
      // The job's context, and the content of every other file the diagnostics involve.
      nlohmann::json context = gate_.context_for(job, path, true);
      for (auto& [k, v] : context.items()) fix["payload"][k] = std::move(v);
      auto& context_files = fix["payload"]["context_files"];
      if (!context_files.is_array()) context_files = nlohmann::json::array();
      for (const auto& d : diags) {
        for (const auto& related : d.value("related", nlohmann::json::array())) {
          const std::string other = related.is_string() ? related.get<std::string>() : "";
          const bool present = std::any_of(context_files.begin(), context_files.end(),
                                           [&](const nlohmann::json& c) { return c.value("path", "") == other; });
          if (other == path || present || !by_path.count(other)) continue;
          context_files.push_back(
              {{"path", other},
               {"content", by_path[other]->value("content", "").substr(0, DependencyGate::kContextBytes)},
               {"relation", "related"}});
        }
      }
      if (context_files.empty()) fix["payload"].erase("context_files");
      if (auto failure = validator_.validate_task(fix)) {
        count(true, "invalid_fix_task", "");
        return kafka::Failure::bad_input("invalid_fix_task",
                                         "the fix task built from this JOB_QA_FAILED is invalid: " + failure->message);
      }
      out.emit(events::make_record(fix_topic_, task_id, fix, &record));
      for (auto& [key, value] : gate_.reopen(job, path, task_id).records) {
        kafka::OutgoingRecord r = events::make_record(plans_topic_, key, value, &record);
        r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
        out.emit(std::move(r));
      }
      publish(
          out, job,
          progress_.apply(job, task_id, path, Step::kFixRequested, "job check: " + first_error(diags), fix_attempt));
    }
    nlohmann::json fixing = nlohmann::json::array();
    for (const auto& [path, diags] : named) fixing.push_back(path);
    set_state("fixing", {{"attempt", attempt + 1}, {"fixing", fixing}});
    count(false, type, fix_topic_);
    return std::nullopt;
  }
  // Out of rounds: the named files are dead-lettered with the diagnostics, and so are the files
  // whose import failed only through them ("via"): delivered, they would not import either. The
  // others are delivered.
  std::set<std::string> failed;
  auto dead_letter = [&](const std::string& path, const nlohmann::json& diags, const std::string& reason) {
    const nlohmann::json& f = *by_path[path];
    const nlohmann::json dp =
        f.contains("delivery") ? f["delivery"].value("payload", nlohmann::json::object()) : nlohmann::json::object();
    const std::string task_id = f.value("task_id", "");
    nlohmann::json value =
        message(events::derived_id("jqf-", task_id, "-" + std::to_string(attempt)), task_id, job, "QA_FAILED", dp);
    value["payload"]["path"] = path;
    value["payload"]["content"] = f.value("content", "");
    value["payload"]["diagnostics"] = diags;
    kafka::InboundRecord as_failed = record;
    as_failed.key = task_id;
    as_failed.value = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.emit(dead_letters_.route(
        as_failed,
        kafka::Failure::bad_input("job_qa_failed", "the job check still failed after " + std::to_string(attempt) +
                                                       " round(s) of fixes: " + reason),
        events::now_ms()));
    publish(out, job, progress_.apply(job, task_id, path, Step::kDeadLettered, "job_qa_failed: " + reason, -1));
    emit_plan_records(out, gate_.failed(job, path, "job_qa_failed: " + reason).records, record);
    failed.insert(path);
    count(true, "job_qa_failed", "");
  };
  std::map<std::string, nlohmann::json> through;  // path -> the findings its import failed through
  for (const auto& [path, diags] : named) {
    for (const auto& d : diags) {
      for (const auto& v : d.value("via", nlohmann::json::array())) {
        const std::string importer = v.is_string() ? v.get<std::string>() : "";
        if (by_path.count(importer) && !named.count(importer)) through[importer].push_back(d);
      }
    }
  }
  for (const auto& [path, diags] : named) dead_letter(path, diags, first_error(diags));
  for (const auto& [path, diags] : through) {
    dead_letter(path, diags,
                "it imports " + diags[0].value("file", "") + ", which failed its job check: " + first_error(diags));
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : failed) list.push_back(p);
  set_state("failed", {{"dead_lettered", list}});
  if (!job_checks_.deliver_before) deliver_held(out, job, *files, failed, record);
  return std::nullopt;
}

bool EventRouter::replan(const nlohmann::json& event, const kafka::InboundRecord& record, kafka::Emitter& out) {
  const std::string job = event["job_id"];
  const std::string task_id = event["task_id"];
  const auto& payload = event["payload"];
  const std::string path = payload.value("path", "");
  const auto plan = gate_.plan(job);
  if (!plan || gate_.replans(job, path) >= table_.replan_limit()) return false;
  nlohmann::json task = message(events::derived_id("replan-", task_id), task_id, job, "REPLAN_TASK",
                                {{"goal", plan->value("goal", "")},
                                 {"path", path},
                                 {"description", payload.value("description", "Write " + path)},
                                 {"content", payload.value("content", "")},
                                 {"diagnostics", payload.value("diagnostics", nlohmann::json::array())},
                                 {"plan", (*plan)["plan"]}});
  for (const char* carried : {"tenant", "language"}) {
    if (payload.contains(carried)) task["payload"][carried] = payload[carried];
  }
  if (validator_.validate_task(task)) return false;  // dead-lettered as today instead
  const std::string why = "QA still failed after " + std::to_string(payload.value("fix_attempt", 0)) +
                          " fix(es), back to the planner: " + first_diagnostic(payload);
  nlohmann::json escalation = message(events::derived_id("esc-replan-", task_id), task_id, job, "ESCALATED",
                                      {{"reason", why.substr(0, 4000)},
                                       {"error_class", "qa_failed_max"},
                                       {"action", "replan"},
                                       {"path", path},
                                       {"service", "router"}});
  out.emit(events::make_record(fix_topic_, task_id, task, &record));
  if (!validator_.validate_event(escalation))
    out.emit(events::make_record(escalations_topic_, job, escalation, &record));
  publish(out, job, progress_.apply(job, task_id, path, JobProgress::Step::kReplanning, why));
  count(false, "QA_FAILED", "replan");
  return true;
}

std::optional<kafka::Failure> EventRouter::handle_plan_event(const nlohmann::json& event,
                                                             const kafka::InboundRecord& record, kafka::Emitter& out) {
  const std::string type = event["type"];
  const std::string job = event["job_id"];
  const std::string task_id = event["task_id"];
  const auto& payload = event["payload"];
  const int attempt = payload.value("plan_attempt", 0);
  const std::string replan_of = payload.value("replan_of", "");
  std::string errors;
  for (const auto& d : payload.value("diagnostics", nlohmann::json::array())) {
    if (errors.size() < 1500) errors += (errors.empty() ? "" : "; ") + d.value("message", "");
  }
  using Step = JobProgress::Step;
  auto lock = progress_.lock(job);
  publish(out, job, progress_.charge_job(job, event["id"], JobProgress::Charge::of(payload)));
  if (type == "PLAN_COMPLETED") {
    const bool fresh = replan_of.empty();
    auto output = fresh ? gate_.accept_plan(job, payload) : gate_.accept_replan(job, task_id, payload);
    if (output.records.empty()) {
      duplicates_->Increment();  // this job's plan (or this replan) is in place already
      return std::nullopt;
    }
    const auto plan = gate_.plan(job);
    const auto before = fresh ? std::nullopt : progress_.get(job);
    for (const auto& f : (*plan)["plan"]["files"]) {
      const std::string p = f["path"];
      // A replan touches its file and the files it added; the others keep their state.
      if (before && p != replan_of && (*before)["files"].contains(p)) continue;
      publish(out, job,
              progress_.apply(job, f.value("task_id", ""), p, Step::kPlanned, "", 0,
                              {{"description", f.value("description", "")},
                               {"depends_on", f.value("depends_on", nlohmann::json::array())}}));
    }
    if (fresh) {
      publish(out, job,
              progress_.set_plan(job, {{"status", "accepted"},
                                       {"goal", payload.value("goal", "")},
                                       {"attempt", attempt},
                                       {"files", (*plan)["plan"]["files"].size()},
                                       {"interface", (*plan)["plan"].value("interface", "")}}));
      for (const auto& item : (*plan)["plan"].value("items", nlohmann::json::array())) {
        nlohmann::json deploy = message(events::derived_id("item-", job, ":" + item.value("id", "")),
                                        events::derived_id("", job, ":" + item.value("id", "")), job, "DEPLOY_ITEM",
                                        {{"item_id", item.value("id", "")},
                                         {"kind", item.value("kind", "group")},
                                         {"title", item.value("title", "")},
                                         {"description", item.value("description", "")}});
        if (item.contains("parent")) deploy["payload"]["parent_id"] = item["parent"];
        if (!validator_.validate_event(deploy)) out.emit(events::make_record(deploy_topic_, job, deploy, &record));
      }
    }
    emit_gate(out, job, std::move(output), record);
    count(false, type, plans_topic_);
    return std::nullopt;
  }
  // PLAN_REJECTED
  if (!replan_of.empty()) {
    const std::string why = "plan_invalid: the replan of " + replan_of + " failed its checks: " + errors;
    publish(out, job, progress_.apply(job, task_id, replan_of, Step::kDeadLettered, why));
    emit_gate(out, job, gate_.failed(job, replan_of, why), record);
    count(true, "plan_invalid", "");
    return kafka::Failure::bad_input("plan_invalid", why);
  }
  // A plan the submitter supplied is not asked for again: the same plan would fail the same way.
  if (attempt < table_.plan_fix_limit() && !payload.value("supplied", false)) {
    nlohmann::json again =
        message(events::derived_id("plan-fix-", task_id, "-" + std::to_string(attempt + 1)), task_id, job, "PLAN_TASK",
                {{"goal", payload["goal"]},
                 {"plan_attempt", attempt + 1},
                 {"previous_reply", payload.value("reply", "")},
                 {"diagnostics", payload["diagnostics"]}});
    for (const char* carried : {"tenant", "constraints", "max_tokens", "priority"}) {
      if (payload.contains(carried)) again["payload"][carried] = payload[carried];
    }
    if (auto failure = validator_.validate_task(again)) {
      count(true, "invalid_fix_task", "");
      return kafka::Failure::bad_input("invalid_fix_task", "the plan-fix task is invalid: " + failure->message);
    }
    out.emit(events::make_record(fix_topic_, task_id, again, &record));
    publish(
        out, job,
        progress_.set_plan(
            job,
            {{"status", "fixing"}, {"goal", payload.value("goal", "")}, {"attempt", attempt + 1}, {"errors", errors}}));
    count(false, type, fix_topic_);
    return std::nullopt;
  }
  const std::string why = "the plan failed its checks " + std::to_string(attempt + 1) + " time(s); last: " + errors;
  publish(
      out, job,
      progress_.set_plan(
          job,
          {{"status", "dead_lettered"}, {"goal", payload.value("goal", "")}, {"attempt", attempt}, {"reason", why}}));
  count(true, "plan_invalid", "");
  return kafka::Failure::bad_input("plan_invalid", why);
}

}  // namespace agentline::router
