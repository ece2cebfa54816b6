#pragma once
// The gateway's view of jobs.progress: the compacted topic read as a table (every partition,
// no consumer group), folded into one document per job (its summary plus a record per file,
// the latest version of each winning). Readers wait for a job to change.
// Thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentline/kafka/record.h"

namespace agentline::gateway {

struct JobSnapshot {
  nlohmann::json doc;        // summary + "files": {path: file}
  std::int64_t version = 0;  // the router's version of the job
  // Ids of the SSE events: the summary's version plus every file's. It grows with every
  // change and is the same on every replica that has read the same records (files and the
  // summary are on different keys, so they may arrive in either order).
  std::int64_t sequence = 0;
  std::string etag;       // strong ETag of `doc`
  bool complete = false;  // every file delivered, failed delivery or dead-lettered
};

class ProgressView {
 public:
  // One record of jobs.progress (key job_id: the summary; key job_id/path: a file).
  void apply(const kafka::InboundRecord& record);

  std::optional<JobSnapshot> job(const std::string& job_id) const;
  // Summaries (without files), newest update first.
  std::vector<nlohmann::json> jobs() const;
  // Waits until the job's sequence is above `after_sequence` (or it appears), or until `timeout`
  // or stop(); the snapshot then, if the job exists.
  std::optional<JobSnapshot> wait_for_change(const std::string& job_id, std::int64_t after_sequence,
                                             std::chrono::milliseconds timeout) const;
  std::size_t size() const;
  void stop();

 private:
  struct Job {
    nlohmann::json summary;
    std::map<std::string, nlohmann::json> files;
    std::int64_t version = 0;
    std::int64_t sequence = 0;
  };
  static JobSnapshot snapshot(const std::string& job_id, const Job& job);

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
  bool stopped_ = false;
};

}  // namespace agentline::gateway
