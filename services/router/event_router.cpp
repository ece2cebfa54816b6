#include "event_router.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"

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

kafka::OutgoingRecord json_record(std::string topic, std::string key, const nlohmann::json& value,
                                  const kafka::InboundRecord& cause) {
  kafka::OutgoingRecord r;
  r.topic = std::move(topic);
  r.key = std::move(key);
  r.value = value.dump();
  r.headers.push_back({std::string(kafka::headers::kContentType), "application/json"});
  if (auto trace = cause.header(kafka::headers::kTraceparent)) {
    r.headers.push_back({std::string(kafka::headers::kTraceparent), std::string(*trace)});
  }
  return r;
}

}  // namespace

EventRouter::EventRouter(const kafka::TopicCatalog& catalog, RoutingTable table, prometheus::Registry& registry,
                         std::size_t dedup_window)
    : table_(std::move(table)),
      submitted_topic_(catalog.topic("tasks.submitted")),
      progress_topic_(catalog.topic("jobs.progress")),
      dedup_window_(dedup_window) {
  std::random_device random;
  char id[40];
  std::snprintf(id, sizeof id, "router-%08x%08x", random(), random());
  origin_ = id;
  routed_ =
      &prometheus::BuildCounter()
           .Name("agentline_router_routed_total")
           .Help(
               "Events routed, by event type and destination (qa.requests, deploy.requests, tasks.fix, dlq, progress)")
           .Register(registry);
  failed_ = &prometheus::BuildCounter()
                 .Name("agentline_router_failed_total")
                 .Help("Events the router dead-lettered, by reason")
                 .Register(registry);
  duplicates_ = &prometheus::BuildCounter()
                     .Name("agentline_router_duplicates_total")
                     .Help("Redelivered events dropped by id")
                     .Register(registry)
                     .Add({});
  failure_ratio_ = &prometheus::BuildGauge()
                        .Name("agentline_router_failure_ratio")
                        .Help("Dead-lettered over all events handled since start (the seed's failure rate)")
                        .Register(registry)
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
  // job's size.
  for (const auto* doc : {&update.summary, &update.file}) {
    kafka::OutgoingRecord r;
    r.topic = progress_topic_;
    r.key = doc == &update.summary ? job_id : job_id + "/" + update.file.value("path", "");
    r.value = doc->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.headers.push_back({std::string(kafka::headers::kContentType), "application/json"});
    r.headers.push_back({std::string(kafka::headers::kOrigin), origin_});
    out.emit(std::move(r));
  }
}

std::optional<kafka::Failure> EventRouter::handle_task(const kafka::InboundRecord& record, kafka::Emitter& out) {
  // Invalid tasks are priority-assigner's to dead-letter; here they are only not counted.
  nlohmann::json task;
  if (events::MessageValidator::parse(record.value, task) || validator_.validate_task(task)) return std::nullopt;
  if (task["type"] != "DEV_TASK" || !first_sight("task:" + task["id"].get<std::string>())) return std::nullopt;
  const std::string job = task["job_id"].get<std::string>();
  auto lock = progress_.lock(job);
  publish(out, job, progress_.apply(job, task["task_id"], task["payload"]["path"], JobProgress::Step::kSubmitted));
  return std::nullopt;
}

std::optional<kafka::Failure> EventRouter::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  if (record.topic == submitted_topic_) return handle_task(record, out);
  nlohmann::json event;
  if (auto failure = events::MessageValidator::parse(record.value, event)) {
    count(true, failure->error_class, "");
    return failure;
  }
  if (auto failure = validator_.validate_event(event)) {
    count(true, failure->error_class, "");
    return failure;
  }
  // A replay from the DLQ is a deliberate second delivery: it is told apart by its count.
  std::string dedup_key = event["id"].get<std::string>();
  if (auto replay = record.header(kafka::headers::kReplayCount)) dedup_key += "#replay-" + std::string(*replay);
  if (!first_sight(dedup_key)) {
    duplicates_->Increment();
    return std::nullopt;
  }
  const std::string type = event["type"];
  const std::string job = event["job_id"];
  const std::string task_id = event["task_id"];
  const auto& payload = event["payload"];
  const std::string path = payload.value("path", "");
  const auto route = table_.route(type);
  if (!route) {
    count(true, "unrouted_event_type", "");
    return kafka::Failure::bad_input("unrouted_event_type", "no route for " + type + " in the routing table");
  }
  using Step = JobProgress::Step;
  if (route->kind == Route::Kind::kForward) {
    // Forwarded as received (validated, unchanged): no second serialization of the content.
    // Outside the job's lock: only the progress records need its order.
    const std::string key = type == "QA_PASSED" ? job : task_id;
    kafka::OutgoingRecord forward = json_record(route->topic, key, nlohmann::json(), record);
    forward.value = record.value;
    out.emit(std::move(forward));
  }
  auto lock = progress_.lock(job);
  switch (route->kind) {
    case Route::Kind::kForward: {
      const Step step = type == "FILE_COMPLETED" ? Step::kGenerated
                        : type == "QA_PASSED"    ? Step::kQaPassed
                                                 : Step::kGenerated;
      publish(out, job, progress_.apply(job, task_id, path, step, "", payload.value("fix_attempt", 0)));
      count(false, type, route->topic);
      return std::nullopt;
    }
    case Route::Kind::kFix: {
      const int attempt = payload.value("fix_attempt", 0);
      progress_.apply(job, task_id, path, Step::kQaFailed, "", attempt);
      if (attempt >= table_.fix_limit()) {
        const std::string why =
            "QA still failed after " + std::to_string(attempt) + " fix(es): " + first_diagnostic(payload);
        publish(
            out, job,
            progress_.apply(job, task_id, path, Step::kDeadLettered, "qa_failed_max: " + first_diagnostic(payload)));
        count(true, "qa_failed_max", "");
        return kafka::Failure::bad_input("qa_failed_max", why);
      }
      nlohmann::json fix = {
          {"id", "fix-" + task_id + "-" + std::to_string(attempt + 1)},
          {"task_id", task_id},
          {"job_id", job},
          {"type", "FIX_TASK"},
          {"created_at", events::now_iso8601()},
          {"payload",
           {{"path", path},
            {"description", payload.value("description", "Fix " + path)},
            {"fix_attempt", attempt + 1},
            {"previous_content", payload.value("content", "")},
            {"diagnostics", payload.contains("diagnostics") ? payload["diagnostics"] : nlohmann::json::array()}}}};
      for (const char* carried :
           {"tenant", "priority", "language", "context_files", "max_tokens", "parent_id", "submitted_at_ms"}) {
        if (payload.contains(carried)) fix["payload"][carried] = payload[carried];
      }
      if (auto failure = validator_.validate_task(fix)) {
        count(true, "invalid_fix_task", "");
        return kafka::Failure::bad_input("invalid_fix_task",
                                         "the fix task built from this QA_FAILED is invalid: " + failure->message);
      }
      out.emit(json_record(route->topic, task_id, fix, record));
      publish(out, job, progress_.apply(job, task_id, path, Step::kFixRequested, "", attempt + 1));
      count(false, type, route->topic);
      return std::nullopt;
    }
    case Route::Kind::kDeadLetter: {
      const std::string error_class = payload.value("error_class", "file_failed");
      publish(
          out, job,
          progress_.apply(job, task_id, path, Step::kDeadLettered, error_class + ": " + payload.value("error", "")));
      count(true, type == "FILE_FAILED" ? "file_failed" : type, "");
      return kafka::Failure::bad_input(type == "FILE_FAILED" ? "file_failed" : "routed_to_dlq",
                                       error_class + ": " + payload.value("error", type));
    }
    case Route::Kind::kProgressOnly: {
      if (path.empty()) {
        // A structural item (epic, story, ...) is delivered too, but it is not a file of the job.
      } else if (type == "UPLOADED") {
        publish(out, job, progress_.apply(job, task_id, path, Step::kDelivered));
      } else if (type == "UPLOAD_FAILED") {
        publish(out, job, progress_.apply(job, task_id, path, Step::kUploadFailed, payload.value("error", "")));
      }
      count(false, type, "progress");
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace agentline::router
