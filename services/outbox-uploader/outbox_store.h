#pragma once
// The outbox: every item read from deploy.requests is staged here (SQLite, WAL,
// synchronous=FULL) before its offset is committed, and leaves only by being uploaded or by
// being marked failed. Thread-safe (one connection behind a mutex); the `status` and
// `retry-failed` commands open the same file from another process.
//
// Item life: pending -> in_flight -> uploaded | pending (retry later) | failed.
// An item still in_flight when a process starts was cut off by a crash: recover_in_flight()
// turns it back to pending with `reconcile` set, and the target then checks whether the
// upload had happened (idempotency key or existence check) before creating anything.
// A child (parent_id set) is claimed only once its parent in the same job is uploaded.
// UPLOADED / UPLOAD_FAILED events are owed while `event_pending` is set, so a crash between
// marking and publishing re-publishes (events carry deterministic ids).
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agentline/storage/sqlite.h"

namespace agentline::outbox {

struct OutboxItem {
  std::int64_t seq = 0;
  std::string staging_key;  // "<job_id>/<item_id>", unique
  std::string job_id;
  std::string task_id;
  std::string item_id;  // a file's task_id, or a DEPLOY_ITEM's item_id
  std::optional<std::string> parent_id;
  std::string kind;  // "file", or epic | feature | story | task | group
  std::string path;  // files only
  std::string title;
  std::string content;
  std::string content_sha256;
  std::string message;       // the inbound record's value, for the DLQ copy
  std::string headers_json;  // its headers, as a JSON array of [name, value]
  std::string source_topic;
  std::int32_t source_partition = 0;
  std::int64_t source_offset = 0;
  std::int64_t source_timestamp_ms = 0;
  // Store-maintained state.
  std::string status = "pending";
  int attempts = 0;
  int rounds = 0;  // how often retry-failed re-armed it
  bool reconcile = false;
  std::optional<std::string> remote_id;
  std::optional<std::string> remote_url;
  std::optional<std::string> parent_remote_id;  // filled by claim()
  std::string last_error;
  // Staging only (not stored): a file's first version (fix attempt 0). Another task of the job
  // may not write its path: that is two files claiming one name, not a new version of one.
  bool first_version = false;
};

// kReannounced: a redelivered request for an item already uploaded (or failed for good): nothing
// is uploaded again, and its UPLOADED (UPLOAD_FAILED) event is owed again, with the same id, so
// the job's progress converges even when the first event was lost or never counted.
// kPathTaken: a first version whose path another task's first version already has (the item
// is not staged; the caller dead-letters it as duplicate_path). kSuperseded: a first version
// whose path already has a fix from another task (a submitted FIX_TASK that got here first):
// not uploaded, its UPLOADED event owed, so the newer version stays.
enum class StageOutcome { kStaged, kDuplicate, kRearmed, kReannounced, kPathTaken, kSuperseded };

class OutboxStore {
 public:
  explicit OutboxStore(const std::string& path);

  // Stages `item` (a redelivery of a staged key is a no-op). `rearm`: a replayed record of
  // an item that failed re-arms it for new attempts.
  // `taken_by` gets the other task's id on kPathTaken and kSuperseded.
  // Durable when it returns. Callers staging at the same time share one transaction (group
  // commit: one of them writes every item waiting, in arrival order, and commits once), so the
  // disk's sync is paid once per group, not per item. A failed commit fails every item of it.
  StageOutcome stage(const OutboxItem& item, bool rearm, std::string* taken_by = nullptr);
  // After a crash: in_flight -> pending with reconcile set. Returns how many.
  int recover_in_flight();
  // Up to `limit` due items whose parent (if any) is uploaded, now in_flight, oldest first.
  std::vector<OutboxItem> claim(int limit, std::int64_t now_ms);

  // What became of one claimed item: uploaded, due again at `next_attempt_ms` (retry), failed,
  // or released (not attempted: the uploader stopped or paused; pending again, no attempt counted).
  struct Settlement {
    enum class Kind { kUploaded, kRetry, kFailed, kReleased };
    Kind kind = Kind::kUploaded;
    std::int64_t seq = 0;
    int attempts = 0;                   // retry, failed
    std::int64_t next_attempt_ms = 0;   // retry
    std::string remote_id, remote_url;  // uploaded
    std::string error;                  // retry, failed
  };
  // Settles a batch's items in one transaction. A crash before it leaves them in_flight, and
  // the next start reconciles them with the target (recover_in_flight).
  void settle(const std::vector<Settlement>& settled, std::int64_t now_ms);
  // The upload loop's one transaction per pass (not synced: see the definition): settles what finished,
  // marks the events Kafka acknowledged as published, then claims up to `claim_limit` items
  // (children of items settled here as uploaded included). claim(), settle() and
  // events_published() are this with the other parts empty.
  std::vector<OutboxItem> pass(const std::vector<Settlement>& settled, const std::vector<std::int64_t>& published,
                               int claim_limit, std::int64_t now_ms);
  // Children that cannot be uploaded because of their parent: one whose parent was never
  // staged, staged before `staged_before_ms` (--parent-wait), or whose parent failed for good,
  // fails now with "parent_missing: ..." (its UPLOAD_FAILED event and DLQ record owed). A
  // parent still pending or retrying keeps its children waiting. Returns how many.
  int fail_orphans(std::int64_t staged_before_ms, std::int64_t now_ms);

  // Items not uploaded yet (pending or in flight) staged from these partitions (topic,
  // partition): what a replica hands over when it loses them. remove() forgets one.
  std::vector<OutboxItem> unfinished_from(const std::vector<std::pair<std::string, std::int32_t>>& partitions);
  // How many of those are in flight now (a count, no rows read).
  std::int64_t in_flight_from(const std::vector<std::pair<std::string, std::int32_t>>& partitions);
  void remove(std::int64_t seq);

  std::vector<OutboxItem> owed_events(int limit);
  // Their events are acknowledged by Kafka: no longer owed (one transaction).
  void events_published(const std::vector<std::int64_t>& seqs);

  // Status -> count for one job ("" : all jobs). "waiting_for_parent" counts pending
  // children whose parent is not uploaded yet.
  std::map<std::string, std::int64_t> summary(const std::string& job_id);
  std::vector<OutboxItem> items(const std::string& job_id, const std::string& status, int limit);
  // failed -> pending with attempts reset. Returns how many.
  std::int64_t retry_failed(const std::string& job_id);

 private:
  struct Staging;
  OutboxItem read_row(storage::Statement& s) const;
  StageOutcome stage_locked(const OutboxItem& item, bool rearm, std::string* taken_by);
  void stage_group(const std::vector<Staging*>& group);
  std::mutex mu_;
  storage::Database db_;
  // Group commit of stage(): items waiting for the next transaction, and whether one is running.
  std::mutex group_mu_;
  std::condition_variable group_done_;
  std::vector<Staging*> waiting_;
  bool committing_ = false;
};

}  // namespace agentline::outbox
