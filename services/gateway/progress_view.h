#pragma once
// The gateway's view of jobs.progress: the compacted topic read as a table (every partition,
// no consumer group), folded into one document per job (its summary plus a record per file,
// the latest version of each winning). Readers wait for a job to change, and take only what
// changed: each file remembers the sequence at which it last changed, so a change costs the
// files it touched, not the job's size. A tombstone (the router's --job-retention) drops a job
// or a file. Thread-safe.
//
// A file is kept as its JSON member text (`"path":{...}`), shared and immutable: a snapshot
// copies pointers under the lock, and the text of a 10,000-file document is put together by
// the reader, outside the lock, a chunk at a time. Sixty-four readers of one big job cost
// sixty-four pointer lists, not sixty-four copies of the document.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentline/kafka/record.h"

namespace agentline::gateway {

struct JobSnapshot {
  // The summary: job_id, version, files_total, files_delivered_or_failed, complete, ...
  nlohmann::json summary;
  // Every file (a snapshot, in path order) or those changed after the sequence asked for,
  // each as its member text `"path":{...}`.
  std::vector<std::shared_ptr<const std::string>> files;
  std::int64_t version = 0;  // the router's version of the job
  // Ids of the SSE events: the summary's version plus every file's. It grows with every
  // change and is the same on every replica that has read the same records (files and the
  // summary are on different keys, so they may arrive in either order).
  std::int64_t sequence = 0;
  // Strong ETag of the job at this sequence (the document and its summary change together);
  // set by job() and summary(), empty from wait_for_change().
  std::string etag;
  bool complete = false;  // every file delivered, failed delivery or dead-lettered

  // The document, the summary with "files": {path: file}, handed to `sink` in pieces of
  // about `chunk` bytes; false as soon as the sink returns false.
  bool write(const std::function<bool(std::string_view)>& sink, std::size_t chunk = 64 * 1024) const;
  std::string text() const;
};

class ProgressView {
 public:
  // One record of jobs.progress (key job_id: the summary; key job_id/path: a file).
  void apply(const kafka::InboundRecord& record);

  std::optional<JobSnapshot> job(const std::string& job_id) const;
  // The job without its files (its summary, sequence and ETag).
  std::optional<JobSnapshot> summary(const std::string& job_id) const;
  // Summaries (without files), newest update first; the cost is the number of jobs.
  std::vector<nlohmann::json> jobs() const;
  // Waits until the job's sequence is above `after_sequence` (or it appears), or until `timeout`
  // or stop(); then the job, if it exists, with the files changed after `files_after` (-1: every
  // file, a snapshot).
  std::optional<JobSnapshot> wait_for_change(const std::string& job_id, std::int64_t after_sequence,
                                             std::chrono::milliseconds timeout, std::int64_t files_after = -1) const;
  std::size_t size() const;
  void stop();

 private:
  struct File {
    std::shared_ptr<const std::string> member;  // `"path":{record}`
    std::int64_t version = 0;
    bool final = false;           // delivered, failed delivery or dead-lettered
    std::int64_t changed_at = 0;  // the job's sequence when it last changed
  };
  struct Job {
    nlohmann::json summary;
    std::map<std::string, File> files;
    std::map<std::int64_t, std::string> changes;  // changed_at -> path, one entry per file
    int done = 0;                                 // files delivered, failed delivery or dead-lettered
    std::int64_t version = 0;
    std::int64_t sequence = 0;
  };
  static nlohmann::json summary_of(const std::string& job_id, const Job& job, bool& complete);
  static JobSnapshot snapshot(const std::string& job_id, const Job& job, std::int64_t files_after, bool with_etag);
  static void set_file(Job& job, const std::string& path, const nlohmann::json& record, std::int64_t version);
  static void drop_file(Job& job, const std::string& path);

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
  bool stopped_ = false;
};

}  // namespace agentline::gateway
