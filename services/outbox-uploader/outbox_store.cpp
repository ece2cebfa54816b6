#include "outbox_store.h"

#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include "agentline/events/timestamps.h"

namespace agentline::outbox {
namespace {

// Version 1: an item's contents (file, inbound record, headers) live in `bodies`, written once
// at staging, so the status changes of the upload loop rewrite small rows (many to a page)
// rather than a page per item. Version 0 kept them in `items`; opening one moves them.
constexpr int kSchemaVersion = 1;
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  staging_key TEXT NOT NULL UNIQUE,
  job_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  parent_key TEXT,
  parent_id TEXT,
  kind TEXT NOT NULL,
  path TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  content_sha256 TEXT NOT NULL DEFAULT '',
  source_topic TEXT NOT NULL DEFAULT '',
  source_partition INTEGER NOT NULL DEFAULT 0,
  source_offset INTEGER NOT NULL DEFAULT 0,
  source_timestamp_ms INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'in_flight', 'uploaded', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  rounds INTEGER NOT NULL DEFAULT 0,
  reconcile INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  remote_id TEXT,
  remote_url TEXT,
  last_error TEXT NOT NULL DEFAULT '',
  event_pending INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bodies (
  seq INTEGER PRIMARY KEY,
  content TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  headers_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS items_due ON items (status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS items_job ON items (job_id, status);
CREATE INDEX IF NOT EXISTS items_path ON items (job_id, path) WHERE kind = 'file';
CREATE INDEX IF NOT EXISTS items_events ON items (event_pending) WHERE event_pending = 1;
)sql";

// Version 0 to 1, in the transaction that opens the store, after kSchema has made `bodies`.
constexpr const char* kMoveBodies = R"sql(
INSERT INTO bodies (seq, content, message, headers_json) SELECT seq, content, message, headers_json FROM items;
ALTER TABLE items DROP COLUMN content;
ALTER TABLE items DROP COLUMN message;
ALTER TABLE items DROP COLUMN headers_json;
)sql";

constexpr const char* kColumns =
    "i.seq, i.staging_key, i.job_id, i.task_id, i.item_id, i.parent_id, i.kind, i.path, i.title, b.content, "
    "i.content_sha256, b.message, b.headers_json, i.source_topic, i.source_partition, i.source_offset, "
    "i.source_timestamp_ms, i.status, i.attempts, i.rounds, i.reconcile, i.remote_id, i.remote_url, i.last_error, "
    "p.remote_id";

// SELECT of every item column (and the parent's remote id), followed by `where`.
std::string select_items(std::string_view where) {
  std::string query = "SELECT ";
  query.append(kColumns)
      .append(" FROM items i JOIN bodies b ON b.seq = i.seq LEFT JOIN items p ON p.staging_key = i.parent_key ")
      .append(where);
  return query;
}

}  // namespace

OutboxStore::OutboxStore(const std::string& path) : db_(path) {
  storage::Database::Transaction tx(db_);
  auto version = db_.prepare("PRAGMA user_version");
  const auto found = version.step() ? version.integer(0) : 0;
  if (found > kSchemaVersion)
    throw storage::SqliteError("the outbox " + path + " has schema version " + std::to_string(found) +
                               "; this outbox-uploader knows up to " + std::to_string(kSchemaVersion));
  db_.exec(kSchema);
  if (found == 0) {
    auto has = db_.prepare("SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = 'content'");
    if (has.step() && has.integer(0) > 0) db_.exec(kMoveBodies);
  }
  db_.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  tx.commit();
}

OutboxItem OutboxStore::read_row(storage::Statement& s) const {
  OutboxItem it;
  it.seq = s.integer(0);
  it.staging_key = s.text(1);
  it.job_id = s.text(2);
  it.task_id = s.text(3);
  it.item_id = s.text(4);
  it.parent_id = s.optional_text(5);
  it.kind = s.text(6);
  it.path = s.text(7);
  it.title = s.text(8);
  it.content = s.text(9);
  it.content_sha256 = s.text(10);
  it.message = s.text(11);
  it.headers_json = s.text(12);
  it.source_topic = s.text(13);
  it.source_partition = static_cast<std::int32_t>(s.integer(14));
  it.source_offset = s.integer(15);
  it.source_timestamp_ms = s.integer(16);
  it.status = s.text(17);
  it.attempts = static_cast<int>(s.integer(18));
  it.rounds = static_cast<int>(s.integer(19));
  it.reconcile = s.integer(20) != 0;
  it.remote_id = s.optional_text(21);
  it.remote_url = s.optional_text(22);
  it.last_error = s.text(23);
  it.parent_remote_id = s.optional_text(24);
  return it;
}

struct OutboxStore::Staging {
  const OutboxItem* item;
  bool rearm;
  StageOutcome outcome = StageOutcome::kDuplicate;
  std::string taken_by;
  std::exception_ptr error;
  bool done = false;
};

StageOutcome OutboxStore::stage(const OutboxItem& item, bool rearm, std::string* taken_by) {
  Staging me{&item, rearm};
  std::unique_lock lock(group_mu_);
  waiting_.push_back(&me);
  // Whoever finds no transaction running writes every item waiting (its own among them, or
  // already written by the one before); the others wait for theirs to be committed.
  while (!me.done) {
    if (committing_) {
      group_done_.wait(lock);
      continue;
    }
    committing_ = true;
    std::vector<Staging*> group;
    group.swap(waiting_);
    lock.unlock();
    stage_group(group);
    lock.lock();
    committing_ = false;
    for (auto* staged : group) staged->done = true;
    group_done_.notify_all();
  }
  if (me.error) std::rethrow_exception(me.error);
  if (taken_by) *taken_by = me.taken_by;
  return me.outcome;
}

void OutboxStore::stage_group(const std::vector<Staging*>& group) {
  std::lock_guard lock(mu_);
  try {
    db_.exec("PRAGMA synchronous=FULL");  // durable on return: the offsets may be committed then
    storage::Database::Transaction tx(db_);
    for (auto* staged : group) staged->outcome = stage_locked(*staged->item, staged->rearm, &staged->taken_by);
    tx.commit();
  } catch (...) {
    for (auto* staged : group) staged->error = std::current_exception();
  }
}

StageOutcome OutboxStore::stage_locked(const OutboxItem& item, bool rearm, std::string* taken_by) {
  const auto now = events::now_ms();
  // A file's first version whose path another task of the job already has: two files claiming
  // one name (duplicate_path) when that one is a first version too; when it is a fix (a
  // submitted FIX_TASK of the same file that got here first), this older version is superseded.
  bool superseded = false;
  if (item.first_version && item.kind == "file" && !item.path.empty()) {
    auto taken = db_.prepare(
        "SELECT i.task_id, COALESCE(CASE WHEN json_valid(b.message) THEN json_extract(b.message, "
        "'$.payload.fix_attempt') END, 0) FROM items i JOIN bodies b ON b.seq = i.seq WHERE i.job_id = ?1 "
        "AND i.path = ?2 AND i.kind = 'file' AND i.task_id != ?3 ORDER BY i.seq DESC LIMIT 1");
    taken.bind(1, item.job_id).bind(2, item.path).bind(3, item.task_id);
    if (taken.step()) {
      if (taken_by) *taken_by = taken.text(0);
      if (taken.integer(1) == 0) return StageOutcome::kPathTaken;
      superseded = true;
    }
  }
  auto insert = db_.prepare(
      "INSERT INTO items (staging_key, job_id, task_id, item_id, parent_key, parent_id, kind, path, title, "
      "content_sha256, source_topic, source_partition, source_offset, source_timestamp_ms, created_ms, updated_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15) "
      "ON CONFLICT (staging_key) DO NOTHING");
  insert.bind(1, item.staging_key).bind(2, item.job_id).bind(3, item.task_id).bind(4, item.item_id);
  if (item.parent_id) {
    insert.bind(5, item.job_id + "/" + *item.parent_id).bind(6, *item.parent_id);
  } else {
    insert.bind_null(5).bind_null(6);
  }
  insert.bind(7, item.kind).bind(8, item.path).bind(9, item.title).bind(10, item.content_sha256);
  insert.bind(11, item.source_topic).bind(12, static_cast<std::int64_t>(item.source_partition));
  insert.bind(13, item.source_offset).bind(14, item.source_timestamp_ms).bind(15, now);
  if (insert.run() == 1) {
    auto body = db_.prepare("INSERT INTO bodies (seq, content, message, headers_json) VALUES (?1, ?2, ?3, ?4)");
    body.bind(1, db_.last_insert_rowid()).bind(2, item.content).bind(3, item.message).bind(4, item.headers_json).run();
    if (!superseded) return StageOutcome::kStaged;
    // Nothing to upload: its UPLOADED event is owed (the path is delivered by the newer version).
    auto done = db_.prepare(
        "UPDATE items SET status = 'uploaded', remote_id = ?2, event_pending = 1, updated_ms = ?3 WHERE staging_key = "
        "?1");
    done.bind(1, item.staging_key).bind(2, "superseded by task " + (taken_by ? *taken_by : std::string("?")));
    done.bind(3, now).run();
    return StageOutcome::kSuperseded;
  }
  if (rearm) {
    auto again = db_.prepare(
        "UPDATE items SET status = 'pending', attempts = 0, rounds = rounds + 1, next_attempt_ms = 0, reconcile = 0, "
        "updated_ms = ?2 WHERE staging_key = ?1 AND status = 'failed' AND event_pending = 0");
    again.bind(1, item.staging_key).bind(2, now);
    if (again.run() == 1) return StageOutcome::kRearmed;
  }
  auto reannounce = db_.prepare(
      "UPDATE items SET event_pending = 1, updated_ms = ?2 WHERE staging_key = ?1 "
      "AND status IN ('uploaded', 'failed') AND event_pending = 0");
  reannounce.bind(1, item.staging_key).bind(2, now);
  return reannounce.run() == 1 ? StageOutcome::kReannounced : StageOutcome::kDuplicate;
}

int OutboxStore::recover_in_flight() {
  std::lock_guard lock(mu_);
  auto s =
      db_.prepare("UPDATE items SET status = 'pending', reconcile = 1, next_attempt_ms = 0 WHERE status = 'in_flight'");
  return static_cast<int>(s.run());
}

std::vector<OutboxItem> OutboxStore::claim(int limit, std::int64_t now_ms) { return pass({}, {}, limit, now_ms); }

void OutboxStore::settle(const std::vector<Settlement>& settled, std::int64_t now_ms) { pass(settled, {}, 0, now_ms); }

std::vector<OutboxItem> OutboxStore::pass(const std::vector<Settlement>& settled,
                                          const std::vector<std::int64_t>& published, int claim_limit,
                                          std::int64_t now_ms) {
  std::vector<OutboxItem> claimed;
  if (settled.empty() && published.empty() && claim_limit <= 0) return claimed;
  std::lock_guard lock(mu_);
  // Not synced: what a pass records only saves repeating work. A process that dies loses none of
  // it (the page cache has it); a power loss may lose the last passes: their items are uploaded
  // again (every target checks first: the same content, the Idempotency-Key, the tag lookup)
  // and their events sent again with the same ids. Staging, which lets offsets be committed,
  // stays synced (stage_group sets it again itself).
  db_.exec("PRAGMA synchronous=NORMAL");
  storage::Database::Transaction tx(db_);
  if (!settled.empty()) {
    auto uploaded = db_.prepare(
        "UPDATE items SET status = 'uploaded', remote_id = ?2, remote_url = ?3, reconcile = 0, event_pending = 1, "
        "last_error = '', attempts = attempts + 1, updated_ms = ?4 WHERE seq = ?1");
    auto retry = db_.prepare(
        "UPDATE items SET status = 'pending', attempts = ?2, next_attempt_ms = ?3, last_error = ?4, updated_ms = ?5 "
        "WHERE seq = ?1");
    auto failed = db_.prepare(
        "UPDATE items SET status = 'failed', attempts = ?2, last_error = ?3, event_pending = 1, reconcile = 0, "
        "updated_ms = ?4 WHERE seq = ?1");
    auto released = db_.prepare("UPDATE items SET status = 'pending' WHERE seq = ?1 AND status = 'in_flight'");
    using Kind = Settlement::Kind;
    for (const auto& s : settled) {
      switch (s.kind) {
        case Kind::kUploaded:
          uploaded.bind(1, s.seq).bind(2, s.remote_id).bind(3, s.remote_url).bind(4, now_ms).run();
          break;
        case Kind::kRetry:
          retry.bind(1, s.seq).bind(2, s.attempts).bind(3, s.next_attempt_ms).bind(4, s.error).bind(5, now_ms).run();
          break;
        case Kind::kFailed:
          failed.bind(1, s.seq).bind(2, s.attempts).bind(3, s.error).bind(4, now_ms).run();
          break;
        case Kind::kReleased:
          released.bind(1, s.seq).run();
          break;
      }
    }
  }
  if (!published.empty()) {
    auto mark = db_.prepare("UPDATE items SET event_pending = 0 WHERE seq = ?1");
    for (const auto seq : published) mark.bind(1, seq).run();
  }
  if (claim_limit > 0) {
    auto s =
        db_.prepare(select_items("WHERE i.status = 'pending' AND i.next_attempt_ms <= ?1"
                                 " AND (i.parent_key IS NULL OR p.status = 'uploaded') ORDER BY i.seq LIMIT ?2"));
    s.bind(1, now_ms).bind(2, static_cast<std::int64_t>(claim_limit));
    while (s.step()) claimed.push_back(read_row(s));
    auto mark = db_.prepare("UPDATE items SET status = 'in_flight', updated_ms = ?2 WHERE seq = ?1");
    for (auto& item : claimed) {
      mark.bind(1, item.seq).bind(2, now_ms).run();
      item.status = "in_flight";
    }
  }
  tx.commit();
  db_.exec("PRAGMA synchronous=FULL");
  return claimed;
}

int OutboxStore::fail_orphans(std::int64_t staged_before_ms, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "UPDATE items SET status = 'failed', event_pending = 1, reconcile = 0, updated_ms = ?2, last_error = "
      "'parent_missing: ' || CASE WHEN EXISTS (SELECT 1 FROM items p WHERE p.staging_key = items.parent_key) "
      "THEN 'parent ' || parent_id || ' failed to upload' "
      "ELSE 'parent ' || parent_id || ' never arrived (--parent-wait)' END "
      "WHERE status = 'pending' AND parent_key IS NOT NULL AND ("
      "  EXISTS (SELECT 1 FROM items p WHERE p.staging_key = items.parent_key AND p.status = 'failed')"
      "  OR (created_ms < ?1 AND NOT EXISTS (SELECT 1 FROM items p WHERE p.staging_key = items.parent_key)))");
  return static_cast<int>(s.bind(1, staged_before_ms).bind(2, now_ms).run());
}

std::vector<OutboxItem> OutboxStore::owed_events(int limit) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(select_items("WHERE i.event_pending = 1 ORDER BY i.seq LIMIT ?1"));
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<OutboxItem> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

void OutboxStore::events_published(const std::vector<std::int64_t>& seqs) { pass({}, seqs, 0, 0); }

std::map<std::string, std::int64_t> OutboxStore::summary(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::int64_t> out{{"pending", 0}, {"in_flight", 0}, {"uploaded", 0}, {"failed", 0}};
  auto s = db_.prepare("SELECT status, COUNT(*) FROM items WHERE ?1 = '' OR job_id = ?1 GROUP BY status");
  s.bind(1, job_id);
  while (s.step()) out[s.text(0)] = s.integer(1);
  auto waiting = db_.prepare(
      "SELECT COUNT(*) FROM items i LEFT JOIN items p ON p.staging_key = i.parent_key"
      " WHERE (?1 = '' OR i.job_id = ?1) AND i.status = 'pending' AND i.parent_key IS NOT NULL"
      " AND (p.status IS NULL OR p.status != 'uploaded')");
  waiting.bind(1, job_id);
  out["waiting_for_parent"] = waiting.step() ? waiting.integer(0) : 0;
  return out;
}

std::vector<OutboxItem> OutboxStore::unfinished_from(
    const std::vector<std::pair<std::string, std::int32_t>>& partitions) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(select_items(
      "WHERE i.status IN ('pending', 'in_flight') AND i.source_topic = ?1 AND i.source_partition = ?2 ORDER BY i.seq"));
  std::vector<OutboxItem> out;
  for (const auto& [topic, partition] : partitions) {
    s.reset();
    s.bind(1, topic).bind(2, static_cast<std::int64_t>(partition));
    while (s.step()) out.push_back(read_row(s));
  }
  return out;
}

std::int64_t OutboxStore::in_flight_from(const std::vector<std::pair<std::string, std::int32_t>>& partitions) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "SELECT COUNT(*) FROM items WHERE status = 'in_flight' AND source_topic = ?1 AND source_partition = ?2");
  std::int64_t n = 0;
  for (const auto& [topic, partition] : partitions) {
    s.reset();
    s.bind(1, topic).bind(2, static_cast<std::int64_t>(partition));
    if (s.step()) n += s.integer(0);
  }
  return n;
}

void OutboxStore::remove(std::int64_t seq) {
  std::lock_guard lock(mu_);
  storage::Database::Transaction tx(db_);
  db_.prepare("DELETE FROM bodies WHERE seq = ?1").bind(1, seq).run();
  db_.prepare("DELETE FROM items WHERE seq = ?1").bind(1, seq).run();
  tx.commit();
}

std::vector<OutboxItem> OutboxStore::items(const std::string& job_id, const std::string& status, int limit) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      select_items("WHERE (?1 = '' OR i.job_id = ?1) AND (?2 = '' OR i.status = ?2) ORDER BY i.seq LIMIT ?3"));
  s.bind(1, job_id).bind(2, status).bind(3, static_cast<std::int64_t>(limit));
  std::vector<OutboxItem> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

std::int64_t OutboxStore::retry_failed(const std::string& job_id) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "UPDATE items SET status = 'pending', attempts = 0, rounds = rounds + 1, next_attempt_ms = 0, updated_ms = ?2 "
      "WHERE status = 'failed' AND event_pending = 0 AND (?1 = '' OR job_id = ?1)");
  s.bind(1, job_id).bind(2, events::now_ms());
  return s.run();
}

}  // namespace agentline::outbox
