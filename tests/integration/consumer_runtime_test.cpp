// The consumer runtime in-process against the embedded broker: retry tiers, parallelism
// inside one partition, and commits that never pass unfinished work.
#include "agentline/kafka/consumer_runtime.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/headers.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "broker_fixture.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;

namespace {

// The fair-queuing tests' tenant: the record key's first letter.
std::string tenant_by_first_letter(const kafka::InboundRecord& r) { return r.key->substr(0, 1); }

const char* kCatalog = R"({
  "prefix": "rt.",
  "topics": [
    {"name": "in", "partitions": 1},
    {"name": "out", "partitions": 1},
    {"name": "dlq", "partitions": 1}
  ],
  "dlq": "dlq",
  "retry": {"delays_ms": [300, 600], "partitions": 1, "groups": ["runtime-test"]}
})";

class ConsumerRuntimeTest : public ::testing::Test {
 protected:
  ConsumerRuntimeTest() : broker_(kafka::TopicCatalog::parse(kCatalog)) {}

  // Runs the runtime on its own thread until stop().
  void start(kafka::Handler handler, int max_in_flight = 8, std::chrono::milliseconds grace = 5s,
             const std::function<void(kafka::ConsumerOptions&)>& configure = {}) {
    handler_ = std::move(handler);
    kafka::KafkaSettings settings{broker_.bootstrap(), {}, ""};
    producer_ = std::make_shared<kafka::Producer>(settings, "runtime-test");
    kafka::ConsumerOptions options;
    options.group_protocol = agentline::testing::group_protocol();
    options.service = "runtime-test";
    options.group_id = "runtime-test";
    options.topics = {topic("in")};
    options.max_in_flight = max_in_flight;
    options.shutdown_grace = grace;
    options.commit_interval = 200ms;
    options.session_timeout = 6000ms;
    options.statistics_interval = 1000ms;
    if (configure) configure(options);
    health_ = std::make_shared<observability::HealthState>();
    registry_ = std::make_shared<prometheus::Registry>();
    runtime_ =
        std::make_unique<kafka::ConsumerRuntime>(settings, options, broker_.catalog(), producer_, registry_, health_);
    thread_ = std::thread([this] { exit_code_ = runtime_->run(handler_); });
  }

  std::string topic(const std::string& logical) const { return broker_.catalog().topic(logical); }
  std::string tier(int n) const { return broker_.catalog().retry_tiers("runtime-test").at(n - 1).topic; }

  int stop() {
    runtime_->request_stop();
    thread_.join();
    runtime_.reset();
    producer_.reset();
    return exit_code_;
  }

  ~ConsumerRuntimeTest() override {
    if (thread_.joinable()) stop();
  }

  BrokerFixture broker_;
  kafka::Handler handler_;
  std::shared_ptr<kafka::Producer> producer_;
  std::shared_ptr<observability::HealthState> health_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<kafka::ConsumerRuntime> runtime_;
  std::thread thread_;
  int exit_code_ = -1;
};

}  // namespace

TEST_F(ConsumerRuntimeTest, TransientFailuresGoThroughEachTierAtItsDelayThenToTheDlq) {
  std::mutex mutex;
  std::vector<std::pair<int, std::chrono::steady_clock::time_point>> attempts;
  start([&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
    std::lock_guard lock(mutex);
    attempts.emplace_back(kafka::attempt_of(r), std::chrono::steady_clock::now());
    return kafka::Failure::transient("backend_unavailable", "HTTP 503 from the model");
  });
  broker_.produce(topic("in"), "k1", "payload-1", {{"traceparent", "00-t-s-01"}});

  auto dlq = broker_.read(topic("dlq"), 1, 30s);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(stop(), 0);
  EXPECT_EQ(dlq[0].value, "payload-1");
  EXPECT_EQ(dlq[0].header(kafka::headers::kAttempt), "3") << "first try plus two retry tiers";
  EXPECT_EQ(dlq[0].header(kafka::headers::kOriginalTopic), topic("in"));
  EXPECT_EQ(dlq[0].header(kafka::headers::kErrorClass), "backend_unavailable");
  EXPECT_EQ(dlq[0].header("traceparent"), "00-t-s-01");

  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0].first, 0);
  EXPECT_EQ(attempts[1].first, 1);
  EXPECT_EQ(attempts[2].first, 2);
  // Each tier holds the record at least its delay (300 ms, then 600 ms).
  EXPECT_GE(attempts[1].second - attempts[0].second, 300ms);
  EXPECT_GE(attempts[2].second - attempts[1].second, 600ms);
  EXPECT_EQ(broker_.read(tier(1), 1, 2s).size(), 1u);
  EXPECT_EQ(broker_.read(tier(2), 1, 2s).size(), 1u);
}

TEST_F(ConsumerRuntimeTest, ARecordThatSucceedsOnRetryIsDeliveredOnceAndNeverDeadLettered) {
  std::atomic<int> calls{0};
  start([&](const kafka::InboundRecord& r, kafka::Emitter& out) -> std::optional<kafka::Failure> {
    if (calls++ == 0) return kafka::Failure::transient("timeout", "first call times out");
    out.emit({topic("out"), *r.key, "done:" + r.value, {}, std::nullopt});
    return std::nullopt;
  });
  broker_.produce(topic("in"), "k1", "v1");
  auto out = broker_.read(topic("out"), 1, 30s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].value, "done:v1");
  EXPECT_EQ(stop(), 0);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 0);
  EXPECT_EQ(broker_.lag("runtime-test", tier(1)), 0);
}

TEST_F(ConsumerRuntimeTest, ABurstOfRetriesRunsOnceEachAndNeverBeforeItsDueTime) {
  // 400 records fail once and come back through the first tier. Few workers, so the local
  // backlog fills and flow control pauses partitions while tier records wait in memory for
  // their due time: none may be lost, run twice, or run early.
  constexpr int kRecords = 400;
  std::mutex mutex;
  std::map<std::string, int> retried;
  int early = 0;
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        if (kafka::attempt_of(r) == 0) return kafka::Failure::transient("backend_unavailable", "first attempt");
        const auto now =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
        std::lock_guard lock(mutex);
        ++retried[*r.key];
        if (now.count() < kafka::retry_due_ms(r)) ++early;
        return std::nullopt;
      },
      2);
  for (int i = 0; i < kRecords; ++i) broker_.produce(topic("in"), "k" + std::to_string(i), "v");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (static_cast<int>(retried.size()) == kRecords || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(broker_.settled({{"runtime-test", {"in"}}})) << "a duplicate, if any, has run once this holds";
  EXPECT_EQ(stop(), 0);
  std::lock_guard lock(mutex);
  ASSERT_EQ(retried.size(), static_cast<std::size_t>(kRecords));
  for (const auto& [key, n] : retried) EXPECT_EQ(n, 1) << key << " ran " << n << " times on retry";
  EXPECT_EQ(early, 0) << "retried records ran before their agentline-retry-due time";
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
  EXPECT_EQ(broker_.lag("runtime-test", tier(1)), 0);
}

TEST_F(ConsumerRuntimeTest, HandlersRunInParallelInsideOnePartition) {
  std::atomic<int> running{0}, peak{0}, done{0};
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter& out) -> std::optional<kafka::Failure> {
        int now = ++running;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(150ms);  // an LLM call, shortened
        out.emit({topic("out"), *r.key, r.value, {}, std::nullopt});
        --running;
        ++done;
        return std::nullopt;
      },
      /*max_in_flight=*/16);
  for (int i = 0; i < 64; ++i) broker_.produce(topic("in"), "k" + std::to_string(i), "v" + std::to_string(i));
  EXPECT_EQ(broker_.read(topic("out"), 64, 60s).size(), 64u);
  EXPECT_EQ(stop(), 0);
  EXPECT_GE(peak.load(), 8) << "a single partition still feeds many handlers at once";
  EXPECT_LE(peak.load(), 16) << "never more than max_in_flight";
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 0);
}

TEST_F(ConsumerRuntimeTest, ATenantsFirstRecordOvertakesAnotherTenantsBacklogAndAHeldTenantWaitsInPlace) {
  // Tenants are the first letter of the key. One worker; each record takes 10 ms (a service time).
  std::mutex mutex;
  std::vector<std::string> order;  // record keys as handled
  std::atomic<int> refusals{0};
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        std::this_thread::sleep_for(10ms);
        std::lock_guard lock(mutex);
        order.push_back(*r.key);
        return std::nullopt;
      },
      /*max_in_flight=*/1, 5s,
      [&](kafka::ConsumerOptions& o) {
        o.read_ahead = 1000;
        o.fair.key = tenant_by_first_letter;
        // Tenant c is over its quota for its first three asks: it waits 100 ms each time.
        o.fair.admit = [&](const std::string& key, const kafka::InboundRecord&) {
          return key == "c" && refusals.fetch_add(1) < 3 ? std::chrono::milliseconds(100) : 0ms;
        };
      });
  std::vector<kafka::OutgoingRecord> flood;
  for (int i = 0; i < 150; ++i) flood.push_back({topic("in"), "a" + std::to_string(1000 + i), "v", {}, std::nullopt});
  broker_.produce_batch(flood);
  auto handled = [&] {
    std::lock_guard lock(mutex);
    return order.size();
  };
  ASSERT_TRUE(agentline::testing::eventually([&] { return handled() >= 5; }, 30s));
  const std::size_t at_arrival = handled();
  broker_.produce_batch({{topic("in"), "b1", "v", {}, std::nullopt},
                         {topic("in"), "c1", "v", {}, std::nullopt},
                         {topic("in"), "b2", "v", {}, std::nullopt}});
  // Records are handled out of offset order now: a commit must still never pass one not handled
  // (a crash would lose it). Committed lag >= records not yet handled, while a's backlog drains.
  std::int64_t worst = 0;
  ASSERT_TRUE(agentline::testing::eventually(
      [&] {
        const auto lag = broker_.lag("runtime-test", topic("in"));
        const auto unhandled = 153 - static_cast<std::int64_t>(handled());
        worst = std::min(worst, lag - unhandled);
        return unhandled == 0;
      },
      60s))
      << handled();
  EXPECT_GE(worst, 0) << "a commit passed a record still waiting";
  EXPECT_EQ(stop(), 0);

  auto position = [&](const std::string& key) {
    return static_cast<std::size_t>(std::find(order.begin(), order.end(), key) - order.begin());
  };
  // FIFO would handle b after the ~145 records of a still waiting; fairly, it waits behind at most
  // a few (the fetch of its records, then one of a's per turn).
  EXPECT_LT(position("b1"), at_arrival + 15) << "b1 arrived after " << at_arrival << " records";
  EXPECT_LT(position("b2"), at_arrival + 15);
  EXPECT_GE(refusals.load(), 4) << "c was asked again after each hold";
  EXPECT_LT(position("c1"), order.size() - 50) << "c waited in place, not behind the whole backlog";
  EXPECT_GT(position("c1"), position("b2")) << "while c was held, the others went on";
  std::vector<std::string> a_order;
  for (const auto& k : order)
    if (k[0] == 'a') a_order.push_back(k);
  EXPECT_TRUE(std::is_sorted(a_order.begin(), a_order.end())) << "a tenant's records keep their order";
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 0);
}

TEST_F(ConsumerRuntimeTest, ABackoffPutsRefusedRecordsBackInTheirTenantsQueueSoAnotherTenantStillGetsItsTurn) {
  // A provider limit that refuses everything of tenant a (a backoff: all consumption holds) until
  // tenant b's record has run. Were a's refused records rerun ahead of every other tenant after
  // each hold, b's record would never run and a would wait for ever.
  std::mutex mutex;
  std::vector<std::string> order;
  std::atomic<bool> b_ran{false};
  std::atomic<int> refused{0};
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        if (r.key->front() == 'a' && !b_ran) {
          ++refused;
          return kafka::Failure::backoff("rate_limited", "the provider's window is full", 20ms);
        }
        if (r.key->front() == 'b') b_ran = true;
        std::lock_guard lock(mutex);
        order.push_back(*r.key);
        return std::nullopt;
      },
      /*max_in_flight=*/4, 5s,
      [&](kafka::ConsumerOptions& o) {
        o.read_ahead = 1000;
        o.fair.key = tenant_by_first_letter;
      });
  std::vector<kafka::OutgoingRecord> flood;
  for (int i = 0; i < 40; ++i) flood.push_back({topic("in"), "a" + std::to_string(100 + i), "v", {}, std::nullopt});
  broker_.produce_batch(flood);
  ASSERT_TRUE(agentline::testing::eventually([&] { return refused.load() >= 4; }, 30s));
  broker_.produce_batch({{topic("in"), "b1", "v", {}, std::nullopt}});
  ASSERT_TRUE(agentline::testing::eventually(
      [&] {
        std::lock_guard lock(mutex);
        return order.size() == 41;
      },
      30s))
      << "b's record never got a turn while a's were refused";
  EXPECT_EQ(stop(), 0);
  EXPECT_EQ(order.front(), "b1");
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), 41u) << "each record ran once";
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 0);
}

TEST_F(ConsumerRuntimeTest, WithFairQueuingARetryTiersRecordsOfManyKeysAllRunInOffsetOrder) {
  // A retry tier holding 20 records of key a, then 20 of key b, due shortly. A tier is read in
  // offset order (its commits are tracked at dispatch), so fair queuing must not reorder it:
  // every record runs once, none is skipped.
  std::mutex mutex;
  std::map<std::string, int> ran;
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        std::lock_guard lock(mutex);
        ++ran[*r.key];
        return std::nullopt;
      },
      /*max_in_flight=*/2, 5s, [&](kafka::ConsumerOptions& o) { o.fair.key = tenant_by_first_letter; });
  const auto due = std::to_string(events::now_ms() + 300);
  std::vector<kafka::OutgoingRecord> records;
  for (int i = 0; i < 40; ++i) {
    records.push_back({tier(1),
                       (i < 20 ? "a" : "b") + std::to_string(100 + i),
                       "v",
                       {{std::string(kafka::headers::kAttempt), "1"},
                        {std::string(kafka::headers::kRetryDue), due},
                        {std::string(kafka::headers::kOriginalTopic), topic("in")}},
                       std::nullopt});
  }
  broker_.produce_batch(records);
  auto count = [&] {
    std::lock_guard lock(mutex);
    return ran.size();
  };
  ASSERT_TRUE(agentline::testing::eventually([&] { return count() == 40; }, 60s)) << count() << " of 40";
  ASSERT_TRUE(broker_.settled({{"runtime-test", {"in"}}}));
  EXPECT_EQ(stop(), 0);
  for (const auto& [key, n] : ran) EXPECT_EQ(n, 1) << key;
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
}

TEST_F(ConsumerRuntimeTest, AKeyTheHandlerHoldsWaitsInPlaceWhileTheOthersGoOn) {
  // Tenant c's first try finds its own limit spent (kHoldKey, 300 ms): c waits, a goes on, then
  // each record of c runs once more, in order, never through a retry tier.
  std::mutex mutex;
  std::vector<std::string> done;
  std::map<std::string, int> tries;
  std::map<std::string, int> attempts_seen;
  std::optional<std::chrono::steady_clock::time_point> held_at;
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        std::this_thread::sleep_for(5ms);
        std::lock_guard lock(mutex);
        attempts_seen[*r.key] = std::max(attempts_seen[*r.key], kafka::attempt_of(r));
        if ((*r.key)[0] == 'c' && tries[*r.key]++ == 0) {
          if (!held_at) held_at = std::chrono::steady_clock::now();
          return kafka::Failure::hold_key("tenant_over_limit", "c's tokens for today are spent", 300ms);
        }
        done.push_back(*r.key);
        return std::nullopt;
      },
      /*max_in_flight=*/1, 5s, [&](kafka::ConsumerOptions& o) { o.fair.key = tenant_by_first_letter; });
  std::vector<kafka::OutgoingRecord> records;
  for (int i = 0; i < 3; ++i) records.push_back({topic("in"), "c" + std::to_string(i), "v", {}, std::nullopt});
  for (int i = 0; i < 40; ++i) records.push_back({topic("in"), "a" + std::to_string(100 + i), "v", {}, std::nullopt});
  broker_.produce_batch(records);
  auto finished = [&] {
    std::lock_guard lock(mutex);
    return done.size();
  };
  ASSERT_TRUE(agentline::testing::eventually([&] { return finished() == 43; }, 60s)) << finished();
  ASSERT_TRUE(broker_.settled({{"runtime-test", {"in"}}}));
  EXPECT_EQ(stop(), 0);
  std::lock_guard lock(mutex);
  auto position = [&](const std::string& key) { return std::find(done.begin(), done.end(), key) - done.begin(); };
  EXPECT_LT(position("c0"), position("c1"));
  EXPECT_LT(position("c1"), position("c2")) << "a held key keeps its records' order";
  EXPECT_GE(position("c0"), 5) << "a went on while c waited";
  for (const auto& [key, n] : tries) EXPECT_EQ(n, 2) << key << ": held once, then run once";
  for (const auto& [key, attempt] : attempts_seen) EXPECT_EQ(attempt, 0) << key << " went through a retry tier";
  EXPECT_TRUE(broker_.read(topic("dlq"), 1, 1s).empty());
}

TEST_F(ConsumerRuntimeTest, CommitsStopBeforeTheFirstUnfinishedRecordAndTheNextOwnerRedoesOnlyThatRecord) {
  for (int i = 0; i < 10; ++i) broker_.produce(topic("in"), "k" + std::to_string(i), std::to_string(i));
  std::atomic<int> finished{0};
  start(
      [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
        if (r.value == "3") std::this_thread::sleep_for(3s);  // outlives the grace period
        ++finished;
        return std::nullopt;
      },
      /*max_in_flight=*/16, /*grace=*/500ms);
  ASSERT_TRUE(agentline::testing::eventually([&] { return finished.load() >= 9; }, 20s));
  EXPECT_EQ(stop(), 0);
  // Offsets 0..2 finished before 3: committed. 4..9 finished too, but behind 3: not committed;
  // the commit's metadata names them (commit_metadata.h).
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 7);

  std::mutex mutex;
  std::vector<std::string> replayed;
  start([&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
    std::lock_guard lock(mutex);
    replayed.push_back(r.value);
    return std::nullopt;
  });
  ASSERT_TRUE(agentline::testing::eventually([&] { return broker_.lag("runtime-test", topic("in")) == 0; }, 30s));
  EXPECT_EQ(stop(), 0);
  EXPECT_EQ(replayed, (std::vector<std::string>{"3"})) << "what finished is not run again";
}

TEST_F(ConsumerRuntimeTest, WorkersTakingRecordsInBatchesRunEachOnceAndAStopLeavesTheUnstartedToTheNextOwner) {
  // A worker takes four records at once (the router's hand-off). The first record's handler
  // outlives the grace period, so the records behind it in its worker's batch never start: the
  // stop must leave them to the next owner, not run them late and uncommitted.
  constexpr int kRecords = 40;
  std::vector<kafka::OutgoingRecord> records;
  for (int i = 0; i < kRecords; ++i)
    records.push_back({topic("in"), "k" + std::to_string(i), std::to_string(i), {}, std::nullopt});
  broker_.produce_batch(records);
  std::mutex mutex;
  std::map<std::string, int> runs;
  std::atomic<bool> slow_first{true};
  auto handler = [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
    if (r.value == "0" && slow_first.exchange(false)) std::this_thread::sleep_for(3s);
    std::lock_guard lock(mutex);
    ++runs[r.value];
    return std::nullopt;
  };
  auto count = [&] {
    std::lock_guard lock(mutex);
    return runs.size();
  };
  auto batched = [](kafka::ConsumerOptions& o) { o.handoff_batch = 4; };
  // Eight in flight: one worker takes records 0-3, another 4-7 and the ones after.
  start(handler, /*max_in_flight=*/8, /*grace=*/500ms, batched);
  ASSERT_TRUE(agentline::testing::eventually([&] { return count() >= kRecords - 4; }, 30s)) << count();
  EXPECT_EQ(stop(), 0);
  start(handler, /*max_in_flight=*/8, 5s, batched);
  ASSERT_TRUE(agentline::testing::eventually([&] { return broker_.lag("runtime-test", topic("in")) == 0; }, 30s));
  EXPECT_EQ(stop(), 0);
  std::lock_guard lock(mutex);
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kRecords));
  for (const auto& [value, n] : runs) {
    if (value == "0") {
      EXPECT_LE(n, 2) << "abandoned past the grace period, so run again";
    } else {
      EXPECT_EQ(n, 1) << value << " ran " << n << " times";
    }
  }
}

TEST_F(ConsumerRuntimeTest, AStopWhileAKeyIsHeldRedoesNothingThatFinishedBehindIt) {
  // Tenant a's first record is held (its limit is spent) while b's records, later in the same
  // partition, all finish. A graceful stop then restart runs a's records once and b's never again.
  std::mutex mutex;
  std::map<std::string, int> runs;
  auto fair = [](kafka::ConsumerOptions& o) { o.fair.key = tenant_by_first_letter; };
  std::atomic<bool> hold_a{true};
  auto handler = [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
    if ((*r.key)[0] == 'a' && hold_a.load()) return kafka::Failure::hold_key("tenant_over_limit", "a waits", 60s);
    std::lock_guard lock(mutex);
    ++runs[*r.key];
    return std::nullopt;
  };
  std::vector<kafka::OutgoingRecord> records;
  for (int i = 0; i < 2; ++i) records.push_back({topic("in"), "a" + std::to_string(i), "v", {}, std::nullopt});
  for (int i = 0; i < 20; ++i) records.push_back({topic("in"), "b" + std::to_string(10 + i), "v", {}, std::nullopt});
  broker_.produce_batch(records);
  auto count = [&] {
    std::lock_guard lock(mutex);
    return runs.size();
  };
  start(handler, /*max_in_flight=*/4, 5s, fair);
  ASSERT_TRUE(agentline::testing::eventually([&] { return count() == 20; }, 30s)) << count();
  EXPECT_EQ(stop(), 0);
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 22) << "a0 at offset 0 holds the commit";

  hold_a = false;
  start(handler, /*max_in_flight=*/4, 5s, fair);
  ASSERT_TRUE(agentline::testing::eventually([&] { return broker_.lag("runtime-test", topic("in")) == 0; }, 30s));
  EXPECT_EQ(stop(), 0);
  std::lock_guard lock(mutex);
  EXPECT_EQ(runs.size(), 22u);
  for (const auto& [key, n] : runs) EXPECT_EQ(n, 1) << key << " ran " << n << " times";
}

TEST_F(ConsumerRuntimeTest, AnExceptionInAHandlerIsATransientFailureNotACrash) {
  start([&](const kafka::InboundRecord&, kafka::Emitter&) -> std::optional<kafka::Failure> {
    throw std::runtime_error("boom");
  });
  broker_.produce(topic("in"), "k1", "v1");
  auto dlq = broker_.read(topic("dlq"), 1, 30s);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].header(kafka::headers::kErrorClass), "unhandled_exception");
  EXPECT_EQ(dlq[0].header(kafka::headers::kErrorMessage), "boom");
  EXPECT_EQ(stop(), 0);
}

// A name the filesystem refuses (too long, invalid) depends on the record, not on the moment:
// it goes to the DLQ at once as bad input, instead of walking every retry tier first (a 300-byte
// path segment did, as unhandled_exception, before).
TEST_F(ConsumerRuntimeTest, AFilesystemErrorCausedByTheRecordGoesStraightToTheDlq) {
  std::atomic<int> calls{0};
  start([&](const kafka::InboundRecord&, kafka::Emitter&) -> std::optional<kafka::Failure> {
    ++calls;
    throw std::filesystem::filesystem_error("cannot write the file", std::string(300, 'x'),
                                            std::make_error_code(std::errc::filename_too_long));
  });
  broker_.produce(topic("in"), "k1", "v1");
  auto dlq = broker_.read(topic("dlq"), 1, 30s);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].header(kafka::headers::kErrorClass), "unwritable_path");
  EXPECT_EQ(dlq[0].header(kafka::headers::kAttempt), "1") << "no retry tier";
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(stop(), 0);
}

// A service with nothing to consume must turn ready again when the broker comes back, not only
// when its next record arrives (an idle priority-assigner stayed "all brokers down" for good).
TEST_F(ConsumerRuntimeTest, ReadinessReturnsWhenTheBrokerComesBackEvenWithNothingToConsume) {
  if (broker_.real_kafka()) GTEST_SKIP() << "needs the embedded broker's down switch";
  start([](const kafka::InboundRecord&, kafka::Emitter&) -> std::optional<kafka::Failure> { return std::nullopt; });
  ASSERT_TRUE(agentline::testing::eventually([&] { return health_->ready(); }, 30s)) << health_->not_ready_reasons();
  broker_.set_broker_down(true);
  ASSERT_TRUE(agentline::testing::eventually([&] { return !health_->ready(); }, 60s)) << "never noticed the outage";
  EXPECT_NE(health_->not_ready_reasons().find("all brokers down"), std::string::npos) << health_->not_ready_reasons();
  broker_.set_broker_down(false);
  EXPECT_TRUE(agentline::testing::eventually([&] { return health_->ready(); }, 60s)) << health_->not_ready_reasons();
  EXPECT_EQ(stop(), 0);
}

namespace {

// The value of a gauge in `registry`, or -1 when it has no such series.
double gauge(prometheus::Registry& registry, const std::string& name, const std::string& label,
             const std::string& value) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      for (const auto& l : m.label)
        if (l.name == label && l.value == value) return m.gauge.value;
    }
  }
  return -1;
}

}  // namespace

TEST_F(ConsumerRuntimeTest, RecordsReadAheadStayWithinTheirByteBoundWhateverTheirCount) {
  // One handler at a time, blocked: without a byte bound the runtime would read 16 records
  // ahead (2 MiB of these); with 512 KiB it stops near 512 KiB. Then every record runs once.
  // (3 MiB in all: the embedded broker drops a partition's oldest records past a cap.)
  constexpr int kRecords = 24;
  const std::string big(128 * 1024, 'x');
  std::vector<kafka::OutgoingRecord> records;
  for (int i = 0; i < kRecords; ++i)
    records.push_back({topic("in"), "k" + std::to_string(i), std::to_string(i) + big, {}, std::nullopt});
  broker_.produce_batch(records);
  std::atomic<bool> release{false};
  std::mutex mutex;
  std::map<std::string, int> runs;
  auto handler = [&](const kafka::InboundRecord& r, kafka::Emitter&) -> std::optional<kafka::Failure> {
    while (!release.load()) std::this_thread::sleep_for(10ms);
    std::lock_guard lock(mutex);
    ++runs[*r.key];
    return std::nullopt;
  };
  constexpr std::size_t kBound = 512 * 1024;
  start(handler, /*max_in_flight=*/1, 5s, [&](kafka::ConsumerOptions& o) { o.read_ahead_bytes = kBound; });
  auto read_ahead = [&](const char* what) {
    return gauge(*registry_, std::string("agentline_consumer_read_ahead_") + what, "service", "runtime-test");
  };
  ASSERT_TRUE(agentline::testing::eventually([&] { return read_ahead("records") >= 3; }, 30s)) << read_ahead("records");
  double most = 0;
  double most_records = 0;
  for (int i = 0; i < 100; ++i) {
    most = std::max(most, read_ahead("bytes"));
    most_records = std::max(most_records, read_ahead("records"));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(most, static_cast<double>(kBound) / 2) << "it read ahead at all";
  EXPECT_LE(most, static_cast<double>(kBound + big.size() + 4096))
      << most_records << " records waited locally (the bound in records is 16)";
  release = true;
  ASSERT_TRUE(agentline::testing::eventually([&] { return broker_.lag("runtime-test", topic("in")) == 0; }, 60s));
  EXPECT_EQ(stop(), 0);
  std::lock_guard lock(mutex);
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kRecords));
  for (const auto& [key, n] : runs) EXPECT_EQ(n, 1) << key;
}

// A broker that does not offer the consumer group protocol (Kafka before 4.0, or one set to
// classic only): under auto the runtime uses the classic protocol and consumes; asked for the
// consumer protocol, it refuses to start and says why (the service exits 1 with that line),
// instead of waiting for a coordinator that never takes it. (The
// embedded broker only: the kafka tier's Kafka offers both; docs/configuration.md.)
TEST(GroupProtocolTest, AutoFallsBackToClassicWhereTheBrokerLacksTheConsumerProtocol) {
  BrokerFixture broker(kafka::TopicCatalog::parse(kCatalog), {1, std::chrono::seconds(6), false});
  kafka::KafkaSettings settings{broker.bootstrap(), {}, ""};
  auto producer = std::make_shared<kafka::Producer>(settings, "protocol-test");
  auto options = [&](kafka::GroupProtocol protocol) {
    kafka::ConsumerOptions o;
    o.group_protocol = protocol;
    o.service = "protocol-test";
    o.group_id = "runtime-test";
    o.topics = {broker.catalog().topic("in")};
    o.commit_interval = 200ms;
    return o;
  };

  auto registry = std::make_shared<prometheus::Registry>();
  auto health = std::make_shared<observability::HealthState>();
  kafka::ConsumerRuntime runtime(settings, options(kafka::GroupProtocol::kAuto), broker.catalog(), producer, registry,
                                 health);
  std::atomic<int> handled{0};
  kafka::Handler handler = [&](const kafka::InboundRecord&, kafka::Emitter&) -> std::optional<kafka::Failure> {
    ++handled;
    return std::nullopt;
  };
  int exit_code = -1;
  std::thread thread([&] { exit_code = runtime.run(handler); });
  for (int i = 0; i < 3; ++i) broker.produce(broker.catalog().topic("in"), "k" + std::to_string(i), "v");
  EXPECT_TRUE(agentline::testing::eventually([&] { return handled.load() == 3; }, 30s)) << handled.load();
  EXPECT_EQ(gauge(*registry, "agentline_consumer_group_protocol", "protocol", "classic"), 1);
  EXPECT_EQ(gauge(*registry, "agentline_consumer_group_protocol", "protocol", "consumer"), 0);
  EXPECT_TRUE(health->ready()) << health->not_ready_reasons();
  runtime.request_stop();
  thread.join();
  EXPECT_EQ(exit_code, 0);

  try {
    kafka::ConsumerRuntime strict(settings, options(kafka::GroupProtocol::kConsumer), broker.catalog(), producer,
                                  std::make_shared<prometheus::Registry>(),
                                  std::make_shared<observability::HealthState>());
    ADD_FAILURE() << "a runtime was built for the consumer protocol on a broker without it";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("do not offer the consumer group protocol"), std::string::npos) << e.what();
  }
}

// The router's coalesced job progress holds each input until the record that carries its step is
// acknowledged (Emitter::hold): the offset waits for the hold, and a failed one is never committed.
TEST_F(ConsumerRuntimeTest, AnInputIsCommittedOnlyOnceItsHoldIsDroppedAndNeverWhenItFailed) {
  for (int i = 0; i < 5; ++i) broker_.produce(topic("in"), "k" + std::to_string(i), std::to_string(i));
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<kafka::Emitter::Hold>> holds;
  start([&](const kafka::InboundRecord& r, kafka::Emitter& out) -> std::optional<kafka::Failure> {
    auto hold = out.hold();
    std::lock_guard lock(mutex);
    holds[r.value] = std::move(hold);
    return std::nullopt;
  });
  auto held = [&] {
    std::lock_guard lock(mutex);
    return holds.size();
  };
  ASSERT_TRUE(agentline::testing::eventually([&] { return held() == 5; }, 20s));
  std::this_thread::sleep_for(1s);  // five commit intervals with every handler returned
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 5) << "nothing committed while held";
  {
    std::lock_guard lock(mutex);
    for (const char* v : {"0", "1", "2"}) holds.erase(v);
  }
  EXPECT_TRUE(agentline::testing::eventually([&] { return broker_.lag("runtime-test", topic("in")) == 2; }, 10s));
  {
    std::lock_guard lock(mutex);
    holds["3"]->fail();
    holds.clear();
  }
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(broker_.lag("runtime-test", topic("in")), 2) << "the failed input and the one behind it wait";
  EXPECT_EQ(stop(), 1) << "a record not delivered: restart and replay";
}
