#pragma once
// Per-job progress, folded from the task and event stream: how many files were submitted,
// generated, passed or failed QA, sent back for fixes, delivered, dead-lettered, the per-file
// status, and the percentage of files that reached an end (QA passed, delivered or
// dead-lettered). Kept as JSON because that is what jobs.progress carries. Thread-safe.
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace agentline::router {

class JobProgress {
 public:
  enum class Step { kSubmitted, kGenerated, kGenerationFailed, kQaPassed, kQaFailed, kFixRequested, kDelivered,
                    kUploadFailed, kDeadLettered };

  // Records one step of one file and returns the job's new state (to publish). Call under
  // lock() when the publication order matters.
  nlohmann::json apply(const std::string& job_id, const std::string& task_id, const std::string& path, Step step,
                       const std::string& reason = "", int fix_attempt = -1);
  // Loads a state read back from jobs.progress (at start).
  void load(const nlohmann::json& state);
  std::optional<nlohmann::json> get(const std::string& job_id) const;
  std::unique_lock<std::mutex> lock() const { return std::unique_lock(publish_mu_); }

 private:
  mutable std::mutex mu_;
  mutable std::mutex publish_mu_;
  std::unordered_map<std::string, nlohmann::json> jobs_;
};

}  // namespace agentline::router
