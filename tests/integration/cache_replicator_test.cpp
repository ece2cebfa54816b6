// The result cache shared between replicas through the compacted cache topic, over a real
// broker connection.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agentline/cache/cache_replicator.h"
#include "broker_fixture.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;

namespace {

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

class CacheReplicatorTest : public ::testing::Test {
 protected:
  CacheReplicatorTest() : broker_(kafka::TopicCatalog::load("")), topic_(broker_.catalog().topic("cache.results")) {}

  cache::CacheReplicatorConfig config(const std::string& replica) {
    cache::CacheReplicatorConfig c;
    c.kafka.bootstrap_servers = broker_.bootstrap();
    c.topic = topic_;
    c.replica_id = replica;
    return c;
  }

  BrokerFixture broker_;
  std::string topic_;
};

TEST_F(CacheReplicatorTest, ANewReplicaWarmsFromTheTopicAndThenFollowsIt) {
  cache::ResultCache a_cache({"a", 1000, 1h});
  cache::CacheReplicator a(a_cache, config("replica-a"));
  a.warm();
  a.start();
  a_cache.put("k1", "gpt-4o", "print(1)");
  a_cache.put("k2", "gpt-4o", "print(2)");
  a_cache.put("old", "gpt-4o", "expired", 1ms);
  ASSERT_TRUE(eventually([&] { return a.stats().published == 3; }));

  // B starts later: it warms from the topic.
  cache::ResultCache b_cache({"b", 1000, 1h});
  cache::CacheReplicator b(b_cache, config("replica-b"));
  EXPECT_EQ(b.warm(), 2u) << "the expired entry is not loaded";
  ASSERT_NE(b_cache.get("k1"), nullptr);
  EXPECT_EQ(*b_cache.get("k1"), "print(1)");
  EXPECT_EQ(b_cache.get("old"), nullptr);
  b.start();

  // Live: A's new entry and A's invalidation reach B; B's entry reaches A.
  a_cache.put("k3", "gpt-4o", "print(3)");
  ASSERT_TRUE(eventually([&] { return b_cache.get("k3") != nullptr; }));
  a_cache.invalidate("k1");
  ASSERT_TRUE(eventually([&] { return b_cache.get("k1") == nullptr; }));
  b_cache.put("k4", "claude", "print(4)");
  ASSERT_TRUE(eventually([&] { return a_cache.get("k4") != nullptr; }));
  EXPECT_EQ(*a_cache.get("k4"), "print(4)");

  // A namespace invalidation from B empties that namespace in A.
  b_cache.invalidate_namespace("gpt-4o");
  ASSERT_TRUE(eventually([&] { return a_cache.get("k2") == nullptr && a_cache.get("k3") == nullptr; }));
  EXPECT_NE(a_cache.get("k4"), nullptr) << "other namespaces stay";
  EXPECT_EQ(b.stats().publish_failures, 0);
  a.stop();
  b.stop();

  // A third replica sees the end state: k4 only (k1 tombstoned; k2, k3 superseded by the
  // namespace marker whatever the partition order).
  cache::ResultCache c_cache({"c", 1000, 1h});
  cache::CacheReplicator c(c_cache, config("replica-c"));
  EXPECT_EQ(c.warm(), 1u);
  EXPECT_NE(c_cache.get("k4"), nullptr);
  EXPECT_EQ(c_cache.get("k2"), nullptr);
  EXPECT_EQ(c_cache.get("k1"), nullptr);
}

TEST_F(CacheReplicatorTest, GarbageOnTheTopicIsSkippedNotFatal) {
  broker_.produce(topic_, "k-bad", "{not json");
  broker_.produce(
      topic_, "k-good",
      nlohmann::json{{"ns", "x"}, {"value", "v"}, {"created_at_ms", 1}, {"expires_at_ms", 9999999999999}}.dump());
  cache::ResultCache cache({"c", 100, 1h});
  cache::CacheReplicator replicator(cache, config("replica"));
  EXPECT_EQ(replicator.warm(), 1u);
  EXPECT_EQ(replicator.stats().skipped, 1);
  EXPECT_NE(cache.get("k-good"), nullptr);
}

}  // namespace
