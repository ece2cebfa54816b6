#include "job_progress.h"

#include <chrono>
#include "agentline/events/timestamps.h"
#include <ctime>

namespace agentline::router {
namespace {

bool is_end(const std::string& status) {
  return status == "qa_passed" || status == "delivered" || status == "dead_lettered" || status == "upload_failed";
}

}  // namespace

nlohmann::json JobProgress::apply(const std::string& job_id, const std::string& task_id, const std::string& path,
                                  Step step, const std::string& reason, int fix_attempt) {
  std::lock_guard lock(mu_);
  auto& job = jobs_[job_id];
  if (job.is_null()) {
    job = {{"job_id", job_id},
           {"counts",
            {{"submitted", 0}, {"generated", 0}, {"generation_failed", 0}, {"qa_passed", 0}, {"qa_failed", 0},
             {"fixes", 0}, {"delivered", 0}, {"upload_failed", 0}, {"dead_lettered", 0}}},
           {"files", nlohmann::json::object()},
           {"version", 0}};
  }
  auto& counts = job["counts"];
  auto& files = job["files"];
  const bool known = files.contains(path);
  auto& file = files[path];
  if (!known) file = {{"task_id", task_id}, {"status", "submitted"}, {"fix_attempt", 0}};
  auto set_status = [&](const char* status) { file["status"] = status; };
  switch (step) {
    case Step::kSubmitted:
      if (!known) counts["submitted"] = counts["submitted"].get<int>() + 1;
      break;
    case Step::kGenerated:
      counts["generated"] = counts["generated"].get<int>() + 1;
      set_status("generated");
      break;
    case Step::kGenerationFailed:
      counts["generation_failed"] = counts["generation_failed"].get<int>() + 1;
      set_status("generation_failed");
      break;
    case Step::kQaPassed:
      counts["qa_passed"] = counts["qa_passed"].get<int>() + 1;
      set_status("qa_passed");
      break;
    case Step::kQaFailed:
      counts["qa_failed"] = counts["qa_failed"].get<int>() + 1;
      set_status("qa_failed");
      break;
    case Step::kFixRequested:
      counts["fixes"] = counts["fixes"].get<int>() + 1;
      set_status("fixing");
      break;
    case Step::kDelivered:
      counts["delivered"] = counts["delivered"].get<int>() + 1;
      set_status("delivered");
      break;
    case Step::kUploadFailed:
      counts["upload_failed"] = counts["upload_failed"].get<int>() + 1;
      set_status("upload_failed");
      break;
    case Step::kDeadLettered:
      counts["dead_lettered"] = counts["dead_lettered"].get<int>() + 1;
      set_status("dead_lettered");
      break;
  }
  if (!reason.empty()) file["reason"] = reason;
  if (fix_attempt >= 0) file["fix_attempt"] = fix_attempt;
  int total = 0;
  int done = 0;
  for (const auto& [p, f] : files.items()) {
    ++total;
    done += is_end(f["status"].get<std::string>()) ? 1 : 0;
  }
  // Submissions counted by the router may trail the first events (different topics): the
  // total is whichever is larger.
  total = std::max(total, counts["submitted"].get<int>());
  job["files_total"] = total;
  job["files_done"] = done;
  job["percent"] = total == 0 ? 0 : (100 * done) / total;
  job["updated_at"] = events::now_iso8601();
  job["version"] = job["version"].get<std::int64_t>() + 1;
  return job;
}

void JobProgress::load(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("job_id") || !state["job_id"].is_string()) return;
  std::lock_guard lock(mu_);
  auto& job = jobs_[state["job_id"].get<std::string>()];
  if (job.is_null() || job.value("version", std::int64_t{0}) <= state.value("version", std::int64_t{0})) job = state;
}

std::optional<nlohmann::json> JobProgress::get(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

}  // namespace agentline::router
