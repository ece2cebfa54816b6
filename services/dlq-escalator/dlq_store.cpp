#include "dlq_store.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace agentline::dlq {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dlq_topic TEXT NOT NULL,
  dlq_partition INTEGER NOT NULL,
  dlq_offset INTEGER NOT NULL,
  record_key TEXT,
  value TEXT NOT NULL,
  headers_json TEXT NOT NULL,
  dialect TEXT NOT NULL,
  original_topic TEXT NOT NULL,
  original_partition INTEGER NOT NULL,
  original_offset INTEGER NOT NULL,
  original_timestamp_ms INTEGER NOT NULL,
  error_class TEXT NOT NULL,
  error_message TEXT NOT NULL,
  failed_service TEXT NOT NULL,
  consumer_group TEXT NOT NULL,
  job_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  replay_count INTEGER NOT NULL,
  dead_lettered_ms INTEGER NOT NULL,
  stored_ms INTEGER NOT NULL,
  digested INTEGER NOT NULL DEFAULT 0,
  replays INTEGER NOT NULL DEFAULT 0,
  replayed_ms INTEGER NOT NULL DEFAULT 0,
  replayed_to TEXT NOT NULL DEFAULT '',
  UNIQUE (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX IF NOT EXISTS records_job ON records (job_id);
CREATE INDEX IF NOT EXISTS records_task ON records (task_id, original_topic);
CREATE INDEX IF NOT EXISTS records_class ON records (error_class);
CREATE INDEX IF NOT EXISTS records_time ON records (dead_lettered_ms);
CREATE INDEX IF NOT EXISTS records_digest ON records (digested) WHERE digested = 0;
)sql";

constexpr const char* kColumns =
    "id, dlq_topic, dlq_partition, dlq_offset, record_key, value, headers_json, dialect, original_topic, "
    "original_partition, original_offset, original_timestamp_ms, error_class, error_message, failed_service, "
    "consumer_group, job_id, task_id, replay_count, dead_lettered_ms, stored_ms, replays, replayed_ms, replayed_to";

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

std::string to_hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) out += static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace

DlqStore::DlqStore(const std::string& path) : db_(path) { db_.exec(kSchema); }

StoredRecord DlqStore::read_row(storage::Statement& s) const {
  StoredRecord r;
  r.id = s.integer(0);
  r.dlq_topic = s.text(1);
  r.dlq_partition = static_cast<std::int32_t>(s.integer(2));
  r.dlq_offset = s.integer(3);
  r.key = s.optional_text(4);
  r.value = s.text(5);
  auto headers = nlohmann::json::parse(s.text(6), nullptr, false);
  if (headers.is_array()) {
    for (const auto& h : headers) {
      if (!h.is_array() || h.size() < 2 || !h[0].is_string() || !h[1].is_string()) continue;
      r.headers.push_back({h[0], h.size() == 3 ? from_hex(h[1].get<std::string>()) : h[1].get<std::string>()});
    }
  }
  r.info.dialect = s.text(7);
  r.info.original_topic = s.text(8);
  r.info.original_partition = static_cast<std::int32_t>(s.integer(9));
  r.info.original_offset = s.integer(10);
  r.info.original_timestamp_ms = s.integer(11);
  r.info.error_class = s.text(12);
  r.info.error_message = s.text(13);
  r.info.failed_service = s.text(14);
  r.info.consumer_group = s.text(15);
  r.info.job_id = s.text(16);
  r.info.task_id = s.text(17);
  r.info.replay_count = static_cast<int>(s.integer(18));
  r.info.dead_lettered_ms = s.integer(19);
  r.stored_ms = s.integer(20);
  r.replays = static_cast<int>(s.integer(21));
  r.replayed_ms = s.integer(22);
  r.replayed_to = s.text(23);
  return r;
}

bool DlqStore::store(const kafka::InboundRecord& record, const DeadLetter& d, std::int64_t now_ms) {
  // Header values may be binary (Spring writes numbers as raw bytes): those are kept as hex
  // ([name, hex, "hex"]) so a replay sends the same bytes back.
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& h : record.headers) {
    if (valid_utf8(h.value)) {
      headers.push_back({h.key, h.value});
    } else {
      headers.push_back({h.key, to_hex(h.value), "hex"});
    }
  }
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "INSERT INTO records (dlq_topic, dlq_partition, dlq_offset, record_key, value, headers_json, dialect, "
      "original_topic, original_partition, original_offset, original_timestamp_ms, error_class, error_message, "
      "failed_service, consumer_group, job_id, task_id, replay_count, dead_lettered_ms, stored_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
      "ON CONFLICT DO NOTHING");
  s.bind(1, record.topic)
      .bind(2, static_cast<std::int64_t>(record.partition))
      .bind(3, record.offset)
      .bind(4, record.key);
  s.bind(5, record.value)
      .bind(6, headers.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .bind(7, d.dialect);
  s.bind(8, d.original_topic).bind(9, static_cast<std::int64_t>(d.original_partition)).bind(10, d.original_offset);
  s.bind(11, d.original_timestamp_ms).bind(12, d.error_class).bind(13, d.error_message).bind(14, d.failed_service);
  s.bind(15, d.consumer_group)
      .bind(16, d.job_id)
      .bind(17, d.task_id)
      .bind(18, d.replay_count)
      .bind(19, d.dead_lettered_ms);
  s.bind(20, now_ms);
  return s.run() == 1;
}

std::vector<StoredRecord> DlqStore::query(const Filter& f) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(std::string("SELECT ") + kColumns +
                       " FROM records WHERE (?1 = '' OR job_id = ?1) AND (?2 = '' OR task_id = ?2)"
                       " AND (?3 = '' OR error_class = ?3)"
                       " AND (?4 = '' OR original_topic = ?4 OR original_topic LIKE '%.' || ?4)"
                       " AND dead_lettered_ms >= ?5 AND (?6 = 0 OR dead_lettered_ms < ?6) AND (?7 = 1 OR replays = 0)"
                       " ORDER BY id LIMIT ?8");
  s.bind(1, f.job_id)
      .bind(2, f.task_id)
      .bind(3, f.reason)
      .bind(4, f.original_topic)
      .bind(5, f.since_ms)
      .bind(6, f.until_ms);
  s.bind(7, static_cast<std::int64_t>(f.include_replayed ? 1 : 0)).bind(8, static_cast<std::int64_t>(f.limit));
  std::vector<StoredRecord> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

void DlqStore::mark_replayed(std::int64_t id, const std::string& target_topic, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  db_.prepare("UPDATE records SET replays = replays + 1, replayed_ms = ?2, replayed_to = ?3 WHERE id = ?1")
      .bind(1, id)
      .bind(2, now_ms)
      .bind(3, target_topic)
      .run();
}

int DlqStore::task_replays(const std::string& task_id, const std::string& original_topic) {
  if (task_id.empty()) return 0;
  std::lock_guard lock(mu_);
  auto s = db_.prepare("SELECT COALESCE(SUM(replays), 0) FROM records WHERE task_id = ?1 AND original_topic = ?2");
  s.bind(1, task_id).bind(2, original_topic);
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

std::optional<std::int64_t> DlqStore::oldest_undigested_ms() {
  std::lock_guard lock(mu_);
  auto s = db_.prepare("SELECT MIN(stored_ms) FROM records WHERE digested = 0");
  if (s.step() && !s.is_null(0)) return s.integer(0);
  return std::nullopt;
}

std::vector<StoredRecord> DlqStore::undigested(int limit) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(std::string("SELECT ") + kColumns + " FROM records WHERE digested = 0 ORDER BY id LIMIT ?1");
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<StoredRecord> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

std::pair<std::int64_t, std::int64_t> DlqStore::count_undigested() {
  std::lock_guard lock(mu_);
  auto s = db_.prepare("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM records WHERE digested = 0");
  if (!s.step()) return {0, 0};
  return {s.integer(0), s.integer(1)};
}

void DlqStore::mark_digested(std::int64_t up_to_id) {
  std::lock_guard lock(mu_);
  db_.prepare("UPDATE records SET digested = 1 WHERE digested = 0 AND id <= ?1").bind(1, up_to_id).run();
}

std::map<std::string, std::int64_t> DlqStore::counts_by_reason() {
  std::lock_guard lock(mu_);
  std::map<std::string, std::int64_t> out;
  auto s = db_.prepare("SELECT error_class, COUNT(*) FROM records GROUP BY error_class");
  while (s.step()) out[s.text(0)] = s.integer(1);
  return out;
}

std::optional<std::int64_t> parse_time(const std::string& text, std::int64_t now_ms) {
  if (text.empty()) return std::nullopt;
  const char unit = text.back();
  if (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') {
    try {
      std::size_t used = 0;
      const double n = std::stod(text.substr(0, text.size() - 1), &used);
      if (used != text.size() - 1 || n < 0) return std::nullopt;
      const double scale = unit == 's' ? 1e3 : unit == 'm' ? 60e3 : unit == 'h' ? 3600e3 : 86400e3;
      return now_ms - static_cast<std::int64_t>(n * scale);
    } catch (...) {
      return std::nullopt;
    }
  }
  bool digits = true;
  for (char c : text) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) return std::stoll(text);
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    tm = {};
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  }
  if (!end || (*end != '\0' && std::string(end) != "Z")) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace agentline::dlq
