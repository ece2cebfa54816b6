#pragma once
// The DLQ store: every dead-lettered record (key, value, headers, reason, origin, times) in
// SQLite, keyed by its DLQ position so a redelivery stores nothing twice. Queried by `list`
// and `replay`, and by the digest. Thread-safe (one connection behind a mutex); the commands
// open the same file from another process (WAL).
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agentline/kafka/record.h"
#include "agentline/storage/sqlite.h"
#include "dead_letter_record.h"

namespace agentline::dlq {

struct StoredRecord {
  std::int64_t id = 0;
  std::string dlq_topic;
  std::int32_t dlq_partition = 0;
  std::int64_t dlq_offset = 0;
  std::optional<std::string> key;
  std::string value;
  kafka::Headers headers;
  DeadLetter info;
  std::int64_t stored_ms = 0;
  int replays = 0;  // how often this record was replayed
  std::int64_t replayed_ms = 0;
  std::string replayed_to;
};

struct Filter {
  std::string job_id;
  std::string task_id;
  std::string reason;          // error class, exact
  std::string original_topic;  // full name, or the logical name with the prefix left off
  std::int64_t since_ms = 0;   // dead-lettered at or after
  std::int64_t until_ms = 0;   // before (0: no bound)
  bool include_replayed = false;
  int limit = 1000;
};

class DlqStore {
 public:
  explicit DlqStore(const std::string& path);

  // True when newly stored; false for a record already stored (a redelivery).
  bool store(const kafka::InboundRecord& record, const DeadLetter& info, std::int64_t now_ms);
  std::vector<StoredRecord> query(const Filter& filter);
  void mark_replayed(std::int64_t id, const std::string& target_topic, std::int64_t now_ms);
  // Replays already made of records of this task from this original topic (loop guard).
  int task_replays(const std::string& task_id, const std::string& original_topic);

  // Records not yet in a sent digest: the oldest one's store time.
  std::optional<std::int64_t> oldest_undigested_ms();
  std::vector<StoredRecord> undigested(int limit);
  // How many records are undigested, and the highest id among them.
  std::pair<std::int64_t, std::int64_t> count_undigested();
  void mark_digested(std::int64_t up_to_id);
  std::map<std::string, std::int64_t> counts_by_reason();

 private:
  StoredRecord read_row(storage::Statement& s) const;
  std::mutex mu_;
  storage::Database db_;
};

// "2026-11-22T10:00:00Z", "2026-11-22", "15m", "2h", "3d" (ago) or ms since the epoch.
std::optional<std::int64_t> parse_time(const std::string& text, std::int64_t now_ms);

}  // namespace agentline::dlq
