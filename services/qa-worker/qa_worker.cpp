#include "qa_worker.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "agentline/events/ids.h"
#include "agentline/events/path_policy.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::qa {
namespace {

// A private directory per check, removed when the check is done.
struct WorkDir {
  WorkDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("agentline-qa-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    std::filesystem::create_directories(path);
    // The sandbox may run as an unprivileged uid: it must be able to write its own scratch files here.
    std::filesystem::permissions(path, std::filesystem::perms::all);
  }
  ~WorkDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

std::string safe_name(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (auto& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  if (name.empty() || name[0] == '.' || name[0] == '-') name = "file" + name;
  return name;
}

}  // namespace

QaWorker::QaWorker(const kafka::TopicCatalog& catalog, CheckTable checks, CheckTable job_checks, Sandbox sandbox,
                   Sandbox job_sandbox, prometheus::Registry& registry)
    : checks_(std::move(checks)),
      job_checks_(std::move(job_checks)),
      sandbox_(std::move(sandbox)),
      job_sandbox_(std::move(job_sandbox)),
      events_topic_(catalog.topic("events")) {
  checks_total_ = &observability::counter(registry, "agentline_qa_checks_total",
                                          "Checks run, by check and outcome (passed, failed, unchecked)");
  limit_kills_ = &observability::counter(registry, "agentline_qa_limit_kills_total",
                                         "Checks stopped by a sandbox limit, by limit");
  duration_ = &observability::histogram(registry, "agentline_qa_check_duration_seconds", "Time a check took, by check");
  job_checks_total_ = &observability::counter(registry, "agentline_qa_job_checks_total",
                                              "Job checks run, by check and outcome (passed, failed, skipped)");
  job_duration_ =
      &observability::histogram(registry, "agentline_qa_job_check_duration_seconds", "Time a job check took, by check");
}

std::optional<kafka::Failure> QaWorker::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  nlohmann::json event;
  if (auto failure = events::MessageValidator::parse(record.value, event)) return failure;
  if (auto failure = validator_.validate_event(event)) return failure;
  const std::string type = event["type"];
  if (type != "FILE_COMPLETED" && type != "JOB_CHECK_REQUESTED") {
    return kafka::Failure::bad_input("unexpected_event_type",
                                     "qa.requests carries FILE_COMPLETED and JOB_CHECK_REQUESTED, not " + type);
  }
  if (!sandbox_problem_.empty()) {
    return kafka::Failure::backoff("sandbox_unavailable", sandbox_problem_, std::chrono::seconds(30));
  }
  return type == "FILE_COMPLETED" ? handle_file(event, record, out) : handle_job(event, record, out);
}

std::optional<kafka::Failure> QaWorker::handle_file(const nlohmann::json& event, const kafka::InboundRecord& record,
                                                    kafka::Emitter& out) {
  const auto& in = event["payload"];
  const std::string path = in["path"];
  nlohmann::json payload = in;  // carried forward for the fix loop and delivery
  payload.erase("warnings");
  const auto checks = checks_.for_path(path);
  nlohmann::json diagnostics = nlohmann::json::array();
  nlohmann::json ran = nlohmann::json::array();
  bool passed = true;
  if (checks.empty()) {
    payload["check"] = "none";
    payload["note"] = "no check for this file type";
    checks_total_->Add({{"check", "none"}, {"outcome", "unchecked"}}).Increment();
  } else {
    WorkDir dir;
    const std::string name = safe_name(path);
    {
      std::ofstream f(dir.path / name, std::ios::binary);
      f << in.value("content", "");
    }
    std::filesystem::permissions(dir.path / name,
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                     std::filesystem::perms::group_read | std::filesystem::perms::others_read);
    std::chrono::milliseconds total{0};
    // In order; the first check that finds an error ends the run (pyflakes after a syntax
    // error would only repeat it).
    for (const auto& check : checks) {
      std::vector<std::string> argv;
      for (const auto& a : check.argv) argv.push_back(a == "{file}" ? name : a);
      const SandboxResult r = sandbox_.run(argv, dir.path.string());
      if (r.infrastructure_error) {
        return kafka::Failure::transient("sandbox_error",
                                         "the check " + check.name + " could not run: " + r.output.substr(0, 500));
      }
      duration_
          ->Add({{"check", check.name}},
                prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
          .Observe(std::chrono::duration<double>(r.duration).count());
      total += r.duration;
      payload["check"] = check.name;
      ran.push_back(check.name);
      nlohmann::json found = nlohmann::json::array();
      if (!r.limit.empty()) {
        limit_kills_->Add({{"limit", r.limit}}).Increment();
        found.push_back({{"file", path},
                         {"severity", "error"},
                         {"check", check.name},
                         {"message", "stopped by the sandbox's " + r.limit + " limit"}});
      } else if (r.exit_code != 0) {
        found = parse_diagnostics(check.parser, r.output, name, path, check.name);
        if (found.empty()) {
          found.push_back({{"file", path},
                           {"severity", "error"},
                           {"check", check.name},
                           {"message", check.name + " failed with exit status " + std::to_string(r.exit_code)}});
        }
      }
      const bool error = std::any_of(found.begin(), found.end(),
                                     [](const nlohmann::json& d) { return d.value("severity", "error") == "error"; });
      checks_total_->Add({{"check", check.name}, {"outcome", error ? "failed" : "passed"}}).Increment();
      for (auto& d : found) diagnostics.push_back(std::move(d));
      if (error) {
        passed = false;
        break;
      }
    }
    payload["checks"] = ran;
    payload["check_duration_ms"] = total.count();
  }
  if (diagnostics.size() > 500) diagnostics.erase(diagnostics.begin() + 500, diagnostics.end());
  const std::string type = passed ? "QA_PASSED" : "QA_FAILED";
  if (!passed) {
    payload["diagnostics"] = diagnostics;
  } else if (!diagnostics.empty()) {
    payload["warnings"] = diagnostics;  // travel with the file into a later fix prompt
  }
  const std::string attempt = std::to_string(in.value("fix_attempt", 0));
  return emit({{"id", (passed ? "qp-" : "qf-") + event["task_id"].get<std::string>() + "-" + attempt},
               {"task_id", event["task_id"]},
               {"job_id", event["job_id"]},
               {"type", type},
               {"created_at", events::now_iso8601()},
               {"payload", payload}},
              record, out);
}

std::optional<kafka::Failure> QaWorker::handle_job(const nlohmann::json& event, const kafka::InboundRecord& record,
                                                   kafka::Emitter& out) {
  const auto& in = event["payload"];
  const std::string job = event["job_id"];
  const int attempt = in.value("job_check_attempt", 0);
  WorkDir dir;
  std::vector<std::string> paths;
  nlohmann::json unassembled = nlohmann::json::array();
  for (const auto& f : in["files"]) {
    const std::string path = f["path"];
    if (auto why = events::unsafe_path_reason(path)) {
      unassembled.push_back({{"file", ""},
                             {"severity", "error"},
                             {"check", "assemble"},
                             {"message", "unsafe path in the job: " + *why + ": " + path.substr(0, 256)}});
      continue;
    }
    const auto file = dir.path / path;
    // A path that is a file in one place and a folder in another cannot be assembled. That is the
    // plan's doing, not a file's: the job check fails naming no file (the router marks the job
    // and delivers what passed) instead of being retried or lost.
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    std::ofstream out_file(file, std::ios::binary);
    if (ec || !(out_file << f.value("content", "")).good()) {
      unassembled.push_back({{"file", ""},
                             {"severity", "error"},
                             {"check", "assemble"},
                             {"message", "cannot write " + path.substr(0, 256) + " into the assembled job: " +
                                             (ec ? ec.message() : std::string("write failed"))}});
      continue;
    }
    paths.push_back(path);
  }
  // The sandbox's user may be unprivileged: it reads everything, and writes only the root.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path)) {
    std::filesystem::permissions(entry.path(),
                                 entry.is_directory()
                                     ? std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                           std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                           std::filesystem::perms::others_exec
                                     : std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                           std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  }
  nlohmann::json checks = nlohmann::json::array();
  nlohmann::json diagnostics = nlohmann::json::array();
  bool failed = false;
  std::chrono::milliseconds total{0};
  for (const auto& check : unassembled.empty() ? job_checks_.for_paths(paths) : std::vector<Check>{}) {
    const SandboxResult r = job_sandbox_.run(check.argv, dir.path.string());
    if (r.infrastructure_error) {
      return kafka::Failure::transient("sandbox_error",
                                       "the job check " + check.name + " could not run: " + r.output.substr(0, 500));
    }
    total += r.duration;
    job_duration_
        ->Add({{"check", check.name}}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
        .Observe(std::chrono::duration<double>(r.duration).count());
    nlohmann::json found = nlohmann::json::array();
    std::string note;
    if (!r.limit.empty()) {
      limit_kills_->Add({{"limit", r.limit}}).Increment();
      found.push_back({{"file", ""},
                       {"severity", "error"},
                       {"check", check.name},
                       {"message", "the job check was stopped by the sandbox's " + r.limit + " limit"}});
    } else {
      // The driver says when its tool is missing: the check is skipped, not failed.
      found = parse_job_diagnostics(check.parser, r.output, check.name, &note);
      if (check.parser != "agentline" && r.exit_code == 0) found = nlohmann::json::array();
      if (check.parser == "agentline" && r.exit_code != 0 && found.empty()) {
        found.push_back({{"file", ""},
                         {"severity", "error"},
                         {"check", check.name},
                         {"message", "the job check failed with exit status " + std::to_string(r.exit_code) + ": " +
                                         valid_utf8(r.output.substr(0, 1500))}});
      }
    }
    const bool error = std::any_of(found.begin(), found.end(),
                                   [](const nlohmann::json& d) { return d.value("severity", "error") == "error"; });
    const std::string outcome = error ? "failed" : !note.empty() ? "skipped" : "passed";
    job_checks_total_->Add({{"check", check.name}, {"outcome", outcome}}).Increment();
    nlohmann::json ran = {{"name", check.name}, {"outcome", outcome}, {"duration_ms", r.duration.count()}};
    if (!note.empty()) ran["note"] = note.substr(0, 4000);
    checks.push_back(std::move(ran));
    failed = failed || error;
    for (auto& d : found) {
      if (diagnostics.size() < 500) diagnostics.push_back(std::move(d));
    }
  }
  if (!unassembled.empty()) {
    failed = true;
    diagnostics = std::move(unassembled);
  }
  const std::string type = failed ? "JOB_QA_FAILED" : "JOB_QA_PASSED";
  const std::string suffix = "-" + std::to_string(attempt);
  return emit({{"id", events::derived_id(failed ? "jqf-" : "jqp-", job, suffix)},
               {"task_id", event["task_id"]},
               {"job_id", job},
               {"type", type},
               {"created_at", events::now_iso8601()},
               {"payload",
                {{"job_check_attempt", attempt},
                 {"checks", checks},
                 {"diagnostics", diagnostics},
                 {"files", paths.size()},
                 {"duration_ms", total.count()}}}},
              record, out);
}

std::optional<kafka::Failure> QaWorker::emit(const nlohmann::json& result, const kafka::InboundRecord& record,
                                             kafka::Emitter& out) {
  const std::string type = result["type"];
  if (auto failure = validator_.validate_event(result)) {
    return kafka::Failure::bad_input("invalid_output",
                                     "the " + type + " built for this record is invalid: " + failure->message);
  }
  out.emit(events::make_record(events_topic_, result["job_id"], result, &record));
  return std::nullopt;
}

}  // namespace agentline::qa
