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

#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"

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

QaWorker::QaWorker(const kafka::TopicCatalog& catalog, CheckTable checks, Sandbox sandbox,
                   prometheus::Registry& registry)
    : checks_(std::move(checks)), sandbox_(std::move(sandbox)), events_topic_(catalog.topic("events")) {
  checks_total_ = &prometheus::BuildCounter()
                       .Name("agentline_qa_checks_total")
                       .Help("Checks run, by check and outcome (passed, failed, unchecked)")
                       .Register(registry);
  limit_kills_ = &prometheus::BuildCounter()
                      .Name("agentline_qa_limit_kills_total")
                      .Help("Checks stopped by a sandbox limit, by limit")
                      .Register(registry);
  duration_ = &prometheus::BuildHistogram()
                   .Name("agentline_qa_check_duration_seconds")
                   .Help("Time a check took, by check")
                   .Register(registry);
}

std::optional<kafka::Failure> QaWorker::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  nlohmann::json event;
  if (auto failure = events::MessageValidator::parse(record.value, event)) return failure;
  if (auto failure = validator_.validate_event(event)) return failure;
  if (event["type"] != "FILE_COMPLETED") {
    return kafka::Failure::bad_input("unexpected_event_type",
                                     "qa.requests carries FILE_COMPLETED, not " + event["type"].get<std::string>());
  }
  if (!sandbox_problem_.empty()) {
    return kafka::Failure::backoff("sandbox_unavailable", sandbox_problem_, std::chrono::seconds(30));
  }
  const auto& in = event["payload"];
  const std::string path = in["path"];
  nlohmann::json payload = in;  // carried forward for the fix loop and delivery
  auto check = checks_.for_path(path);
  bool passed = true;
  nlohmann::json diagnostics = nlohmann::json::array();
  if (!check) {
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
    std::vector<std::string> argv;
    for (const auto& a : check->argv) argv.push_back(a == "{file}" ? name : a);
    const SandboxResult r = sandbox_.run(argv, dir.path.string());
    if (r.infrastructure_error) {
      return kafka::Failure::transient("sandbox_error",
                                       "the check " + check->name + " could not run: " + r.output.substr(0, 500));
    }
    duration_
        ->Add({{"check", check->name}},
              prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
        .Observe(std::chrono::duration<double>(r.duration).count());
    payload["check"] = check->name;
    payload["check_duration_ms"] = r.duration.count();
    if (!r.limit.empty()) {
      passed = false;
      limit_kills_->Add({{"limit", r.limit}}).Increment();
      diagnostics.push_back({{"file", path},
                             {"severity", "error"},
                             {"check", check->name},
                             {"message", "stopped by the sandbox's " + r.limit + " limit"}});
    } else if (r.exit_code != 0) {
      passed = false;
      diagnostics = parse_diagnostics(check->parser, r.output, name, path, check->name);
      if (diagnostics.empty()) {
        diagnostics.push_back({{"file", path},
                               {"severity", "error"},
                               {"check", check->name},
                               {"message", check->name + " failed with exit status " + std::to_string(r.exit_code)}});
      }
    }
    checks_total_->Add({{"check", check->name}, {"outcome", passed ? "passed" : "failed"}}).Increment();
  }
  const std::string type = passed ? "QA_PASSED" : "QA_FAILED";
  if (!passed) {
    if (diagnostics.size() > 500) diagnostics.erase(diagnostics.begin() + 500, diagnostics.end());
    payload["diagnostics"] = diagnostics;
  }
  const std::string attempt = std::to_string(in.value("fix_attempt", 0));
  nlohmann::json result = {{"id", (passed ? "qp-" : "qf-") + event["task_id"].get<std::string>() + "-" + attempt},
                           {"task_id", event["task_id"]},
                           {"job_id", event["job_id"]},
                           {"type", type},
                           {"created_at", events::now_iso8601()},
                           {"payload", payload}};
  if (auto failure = validator_.validate_event(result)) {
    return kafka::Failure::bad_input("invalid_output",
                                     "the " + type + " built for this file is invalid: " + failure->message);
  }
  kafka::OutgoingRecord r;
  r.topic = events_topic_;
  r.key = event["job_id"];
  r.value = result.dump();
  r.headers.push_back({std::string(kafka::headers::kContentType), "application/json"});
  if (auto trace = record.header(kafka::headers::kTraceparent))
    r.headers.push_back({std::string(kafka::headers::kTraceparent), std::string(*trace)});
  out.emit(std::move(r));
  return std::nullopt;
}

}  // namespace agentline::qa
