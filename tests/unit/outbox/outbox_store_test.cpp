#include "outbox_store.h"

#include "agentline/storage/sqlite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <thread>
#include <vector>

namespace agentline::outbox {
namespace {

namespace fs = std::filesystem;

using Kind = OutboxStore::Settlement::Kind;

class OutboxStoreTest : public ::testing::Test {
 protected:
  OutboxStoreTest() {
    path_ = fs::temp_directory_path() /
            ("outbox-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) + ".db");
    fs::remove(path_);
  }
  ~OutboxStoreTest() override {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_.string() + suffix);
  }
  static OutboxItem item(const std::string& job, const std::string& id,
                         std::optional<std::string> parent = std::nullopt) {
    OutboxItem it;
    it.job_id = job;
    it.task_id = id;
    it.item_id = id;
    it.staging_key = job + "/" + id;
    it.kind = parent ? "file" : "story";
    it.path = id + ".py";
    it.content = "print('" + id + "')\n";
    it.parent_id = std::move(parent);
    return it;
  }
  static inline int counter_ = 0;
  fs::path path_;
};

// A redelivered request never uploads again; for a finished item it owes the item's event
// again (the job's progress may never have counted the first), and only a replay re-arms a
// failed item.
TEST_F(OutboxStoreTest, ARedeliveryReannouncesAFinishedItemAndOnlyAReplayReArmsAFailedOne) {
  OutboxStore store(path_.string());
  EXPECT_EQ(store.stage(item("j", "a"), false), StageOutcome::kStaged);
  EXPECT_EQ(store.stage(item("j", "a"), false), StageOutcome::kDuplicate);
  EXPECT_EQ(store.stage(item("j", "a"), true), StageOutcome::kDuplicate) << "a pending item is not re-armed";
  auto claimed = store.claim(10, 0);
  ASSERT_EQ(claimed.size(), 1u);
  store.settle({{.kind = Kind::kFailed, .seq = claimed[0].seq, .attempts = 3, .error = "http_422: refused"}}, 1);
  store.events_published({claimed[0].seq});
  EXPECT_TRUE(store.owed_events(10).empty());
  EXPECT_EQ(store.stage(item("j", "a"), false), StageOutcome::kReannounced);
  EXPECT_EQ(store.owed_events(10).size(), 1u) << "the UPLOAD_FAILED event is owed again";
  EXPECT_EQ(store.stage(item("j", "a"), false), StageOutcome::kDuplicate) << "owed once, not twice";
  store.events_published({claimed[0].seq});
  EXPECT_EQ(store.stage(item("j", "a"), true), StageOutcome::kRearmed);
  claimed = store.claim(10, 0);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].attempts, 0);
  EXPECT_EQ(claimed[0].rounds, 1);
}

TEST_F(OutboxStoreTest, ARedeliveredRequestForAnUploadedItemOwesItsUploadedEventAgainNotAnUpload) {
  OutboxStore store(path_.string());
  store.stage(item("j", "a"), false);
  auto claimed = store.claim(10, 0);
  ASSERT_EQ(claimed.size(), 1u);
  store.settle({{.kind = Kind::kUploaded, .seq = claimed[0].seq, .remote_id = "r-1", .remote_url = ""}}, 1);
  store.events_published({claimed[0].seq});
  EXPECT_EQ(store.stage(item("j", "a"), false), StageOutcome::kReannounced);
  const auto owed = store.owed_events(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].status, "uploaded");
  EXPECT_EQ(owed[0].remote_id.value_or(""), "r-1");
  EXPECT_TRUE(store.claim(10, 0).empty()) << "nothing is uploaded again";
}

TEST_F(OutboxStoreTest, AChildIsClaimedOnlyAfterItsParentIsUploadedAndCarriesItsRemoteId) {
  OutboxStore store(path_.string());
  store.stage(item("j", "child", "story"), false);
  EXPECT_TRUE(store.claim(10, 0).empty()) << "the parent is not even staged";
  EXPECT_EQ(store.summary("j")["waiting_for_parent"], 1);
  store.stage(item("j", "story"), false);
  auto first = store.claim(10, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].item_id, "story");
  EXPECT_TRUE(store.claim(10, 0).empty()) << "the parent is in flight, not uploaded";
  store.settle({{.kind = Kind::kUploaded, .seq = first[0].seq, .remote_id = "42", .remote_url = "https://example/42"}},
               1);
  auto second = store.claim(10, 0);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].item_id, "child");
  EXPECT_EQ(second[0].parent_remote_id.value_or(""), "42");
  // A parent of another job with the same item id is not this child's parent.
  store.stage(item("other", "child", "story"), false);
  EXPECT_TRUE(store.claim(10, 0).empty());
}

TEST_F(OutboxStoreTest, AChildWhoseParentNeverArrivesOrFailedIsGivenUpWithItsReason) {
  OutboxStore store(path_.string());
  store.stage(item("j", "orphan", "never-staged"), false);
  store.stage(item("j", "waits", "story"), false);
  store.stage(item("j", "story"), false);
  EXPECT_EQ(store.fail_orphans(0, 1), 0) << "within --parent-wait nothing is given up";
  EXPECT_EQ(store.fail_orphans(std::numeric_limits<std::int64_t>::max(), 1), 1)
      << "after it, the child of a parent never staged; a child of a pending parent keeps waiting";
  auto failed = store.items("j", "failed", 10);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].item_id, "orphan");
  EXPECT_EQ(failed[0].last_error, "parent_missing: parent never-staged never arrived (--parent-wait)");
  EXPECT_EQ(store.owed_events(10).size(), 1u) << "its UPLOAD_FAILED event (and DLQ record) are owed";
  // The parent fails for good: its child is given up at once, whatever the wait.
  auto claimed = store.claim(10, 1);
  ASSERT_EQ(claimed.size(), 1u);
  store.settle({{.kind = Kind::kFailed, .seq = claimed[0].seq, .attempts = 8, .error = "HTTP 500"}}, 2);
  EXPECT_EQ(store.fail_orphans(0, 3), 1);
  EXPECT_EQ(store.items("j", "failed", 10).size(), 3u);
}

TEST_F(OutboxStoreTest, TwoTasksOfAJobCannotBothWriteAPathButAFixMayReplaceIt) {
  OutboxStore store(path_.string());
  auto file = [](const std::string& task, bool first) {
    auto it = item("j", task, std::string("story"));
    it.path = "app/main.py";
    it.first_version = first;
    return it;
  };
  EXPECT_EQ(store.stage(file("t1", true), false), StageOutcome::kStaged);
  std::string taken_by;
  EXPECT_EQ(store.stage(file("t2", true), false, &taken_by), StageOutcome::kPathTaken);
  EXPECT_EQ(taken_by, "t1");
  EXPECT_EQ(store.stage(file("t1", true), false), StageOutcome::kDuplicate) << "its own redelivery is no conflict";
  auto fix = file("t3", false);
  fix.message = R"({"payload": {"fix_attempt": 1}})";
  EXPECT_EQ(store.stage(fix, false), StageOutcome::kStaged) << "a submitted fix is a new version";
  // A first version arriving after a fix of its path is older: not uploaded, announced as done.
  EXPECT_EQ(store.stage(file("t4", true), false, &taken_by), StageOutcome::kSuperseded);
  EXPECT_EQ(taken_by, "t3");
  const auto owed = store.owed_events(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].task_id, "t4");
  EXPECT_EQ(owed[0].status, "uploaded");
  auto other_job = file("t2", true);
  other_job.job_id = "k";
  other_job.staging_key = "k/t2";
  EXPECT_EQ(store.stage(other_job, false), StageOutcome::kStaged) << "paths are per job";
}

TEST_F(OutboxStoreTest, ItemsInFlightAtACrashComeBackForReconciliation) {
  {
    OutboxStore store(path_.string());
    store.stage(item("j", "a"), false);
    store.stage(item("j", "b"), false);
    ASSERT_EQ(store.claim(1, 0).size(), 1u);  // "a" is in flight when the process dies
  }
  OutboxStore reopened(path_.string());
  EXPECT_EQ(reopened.summary("j")["in_flight"], 1);
  EXPECT_EQ(reopened.recover_in_flight(), 1);
  auto claimed = reopened.claim(10, 0);
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].item_id, "a");
  EXPECT_TRUE(claimed[0].reconcile);
  EXPECT_FALSE(claimed[1].reconcile);
}

TEST_F(OutboxStoreTest, RetriesWaitForTheirTimeAndEventsAreOwedUntilPublished) {
  OutboxStore store(path_.string());
  store.stage(item("j", "a"), false);
  auto claimed = store.claim(10, 1000);
  store.settle({{.kind = Kind::kRetry,
                 .seq = claimed[0].seq,
                 .attempts = 1,
                 .next_attempt_ms = 5000,
                 .error = "http_503: busy"}},
               5000);
  EXPECT_TRUE(store.claim(10, 4999).empty());
  claimed = store.claim(10, 5000);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_TRUE(store.owed_events(10).empty());
  store.settle({{.kind = Kind::kUploaded, .seq = claimed[0].seq, .remote_id = "r1", .remote_url = ""}}, 6000);
  auto owed = store.owed_events(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].status, "uploaded");
  EXPECT_EQ(owed[0].remote_id.value_or(""), "r1");
  store.events_published({owed[0].seq});
  EXPECT_TRUE(store.owed_events(10).empty());
}

TEST_F(OutboxStoreTest, SummaryAndRetryFailedArePerJob) {
  OutboxStore store(path_.string());
  for (const char* id : {"a", "b", "c"}) store.stage(item("j1", id), false);
  store.stage(item("j2", "a"), false);
  for (auto& it : store.claim(10, 0)) {
    store.settle({{.kind = Kind::kFailed, .seq = it.seq, .attempts = 8, .error = "timeout"}}, 1);
    store.events_published({it.seq});
  }
  EXPECT_EQ(store.summary("j1")["failed"], 3);
  EXPECT_EQ(store.summary("")["failed"], 4);
  EXPECT_EQ(store.retry_failed("j1"), 3);
  EXPECT_EQ(store.summary("j1")["pending"], 3);
  EXPECT_EQ(store.summary("j2")["failed"], 1);
  EXPECT_EQ(store.items("j2", "failed", 10)[0].last_error, "timeout");
}

// Handlers stage at the same time (the runtime runs 16): their items share transactions (one
// sync of the disk per group), and each caller still gets its own item's outcome, durable when
// stage() returns (read back from a new connection).
TEST_F(OutboxStoreTest, ItemsStagedAtTheSameTimeEachGetTheirOwnOutcomeAndAreDurableOnReturn) {
  OutboxStore store(path_.string());
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::vector<StageOutcome>> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every thread stages its own items, and each item of thread 0 a second time (a redelivery).
        outcomes[t].push_back(store.stage(item("j", "t" + std::to_string(t) + "-" + std::to_string(i)), false));
        if (t == 0) outcomes[t].push_back(store.stage(item("j", "t0-" + std::to_string(i)), false));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (std::size_t i = 0; i < outcomes[t].size(); ++i) {
      const auto expected = t == 0 && i % 2 == 1 ? StageOutcome::kDuplicate : StageOutcome::kStaged;
      EXPECT_EQ(outcomes[t][i], expected) << "thread " << t << ", call " << i;
    }
  }
  OutboxStore reader(path_.string());
  EXPECT_EQ(reader.summary("j")["pending"], kThreads * kEach);
}

// An outbox written by an earlier release (schema version 0: contents in the items table) opens
// with its items intact: the one in flight at the crash is reconciled and uploaded with its
// content and original record, the uploaded one is not claimed again, and staging goes on.
TEST_F(OutboxStoreTest, AnOutboxOfTheEarlierSchemaOpensWithItsItemsAndTheirContents) {
  {
    storage::Database old(path_.string());
    old.exec(R"sql(
CREATE TABLE items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, staging_key TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL,
  task_id TEXT NOT NULL, item_id TEXT NOT NULL, parent_key TEXT, parent_id TEXT, kind TEXT NOT NULL,
  path TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', content TEXT NOT NULL DEFAULT '',
  content_sha256 TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', headers_json TEXT NOT NULL DEFAULT '[]',
  source_topic TEXT NOT NULL DEFAULT '', source_partition INTEGER NOT NULL DEFAULT 0,
  source_offset INTEGER NOT NULL DEFAULT 0, source_timestamp_ms INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'in_flight', 'uploaded', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0, rounds INTEGER NOT NULL DEFAULT 0, reconcile INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0, remote_id TEXT, remote_url TEXT, last_error TEXT NOT NULL DEFAULT '',
  event_pending INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX items_due ON items (status, next_attempt_ms);
CREATE INDEX items_job ON items (job_id, status);
CREATE INDEX items_events ON items (event_pending) WHERE event_pending = 1;
INSERT INTO items (staging_key, job_id, task_id, item_id, kind, path, content, message, headers_json, source_topic,
                   source_partition, source_offset, status, created_ms, updated_ms)
VALUES ('j/a', 'j', 'a', 'a', 'file', 'a.py', 'print(1)', '{"type":"QA_PASSED"}', '[["h","v"]]', 'deploy.requests',
        3, 41, 'in_flight', 1, 1),
       ('j/b', 'j', 'b', 'b', 'file', 'b.py', 'print(2)', '{}', '[]', 'deploy.requests', 3, 42, 'uploaded', 1, 1);
)sql");
  }
  OutboxStore store(path_.string());
  EXPECT_EQ(store.recover_in_flight(), 1);
  const auto claimed = store.claim(10, 0);
  ASSERT_EQ(claimed.size(), 1u) << "the uploaded item is not claimed again";
  EXPECT_EQ(claimed[0].staging_key, "j/a");
  EXPECT_TRUE(claimed[0].reconcile);
  EXPECT_EQ(claimed[0].content, "print(1)");
  EXPECT_EQ(claimed[0].message, R"({"type":"QA_PASSED"})");
  EXPECT_EQ(claimed[0].headers_json, R"([["h","v"]])");
  EXPECT_EQ(claimed[0].source_offset, 41);
  EXPECT_EQ(store.stage(item("j", "c"), false), StageOutcome::kStaged);
  EXPECT_EQ(store.stage(item("j", "b"), false), StageOutcome::kReannounced);
  EXPECT_EQ(store.claim(10, 0).at(0).content, "print('c')\n");
  OutboxStore again(path_.string());  // opened a second time: nothing to move
  EXPECT_EQ(again.summary("j")["uploaded"], 1);
}

}  // namespace
}  // namespace agentline::outbox
