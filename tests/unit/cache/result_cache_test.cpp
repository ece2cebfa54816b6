#include "agentline/cache/result_cache.h"
#include "eventually.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <latch>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace agentline::cache {
namespace {

using namespace std::chrono_literals;
using resilience::ManualClock;

TEST(ContentKey, Sha256OfCanonicalContent) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const auto a = nlohmann::json::parse(R"({"model":"gpt-4o","temperature":0.2,"prompt":"write x.py"})");
  const auto b = nlohmann::json::parse(R"({"prompt":"write x.py","temperature":0.2,"model":"gpt-4o"})");
  EXPECT_EQ(content_key("gen", a), content_key("gen", b)) << "field order does not matter";
  EXPECT_NE(content_key("gen", a), content_key("gen-v2", a)) << "the namespace is part of the key";
  auto c = a;
  c["temperature"] = 0.3;
  EXPECT_NE(content_key("gen", a), content_key("gen", c));
  EXPECT_EQ(content_key("gen", a).size(), 64u);
}

TEST(ResultCache, HitsMissesAndTtl) {
  ManualClock clock;
  ResultCache cache({"t", 100, 10min}, clock);
  EXPECT_EQ(cache.get("k"), nullptr);
  cache.put("k", "ns", "print('hi')");
  auto v = cache.get("k");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "print('hi')");
  cache.put("short", "ns", "x", 1s);
  clock.advance(2s);
  EXPECT_EQ(cache.get("short"), nullptr) << "past its own TTL";
  EXPECT_NE(cache.get("k"), nullptr);
  clock.advance(10min);
  EXPECT_EQ(cache.get("k"), nullptr);
  const auto s = cache.stats();
  EXPECT_EQ(s.hits, 2);
  EXPECT_EQ(s.misses, 3);
  EXPECT_EQ(s.expirations, 2);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.4);
}

TEST(ResultCache, InvalidateByKeyAndByNamespace) {
  ManualClock clock;
  ResultCache cache({"t", 100, 1h}, clock);
  cache.put("a", "model-a", "1");
  cache.put("b", "model-a", "2");
  cache.put("c", "model-b", "3");
  EXPECT_TRUE(cache.invalidate("c"));
  EXPECT_FALSE(cache.invalidate("c"));
  EXPECT_EQ(cache.invalidate_namespace("model-a"), 2u);
  EXPECT_EQ(cache.get("a"), nullptr);
  EXPECT_EQ(cache.get("b"), nullptr);
  EXPECT_EQ(cache.stats().invalidations, 3);
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(ResultCache, StaysWithinItsBound) {
  for (auto policy : {ResultCacheConfig::Policy::kWTinyLfu, ResultCacheConfig::Policy::kLru}) {
    ManualClock clock;
    ResultCache cache({"t", 500, 1h, policy, 1}, clock);
    for (int i = 0; i < 5000; ++i) cache.put("k" + std::to_string(i), "ns", "v");
    const auto s = cache.stats();
    EXPECT_EQ(s.entries, 500u);
    EXPECT_EQ(s.evictions, 4500);
  }
}

TEST(ResultCache, LruKeepsTheMostRecent) {
  ManualClock clock;
  ResultCache cache({"t", 3, 1h, ResultCacheConfig::Policy::kLru, 1}, clock);
  cache.put("a", "", "1");
  cache.put("b", "", "2");
  cache.put("c", "", "3");
  cache.get("a");
  cache.put("d", "", "4");  // evicts b, the least recently used
  EXPECT_EQ(cache.get("b"), nullptr);
  EXPECT_NE(cache.get("a"), nullptr);
  EXPECT_NE(cache.get("c"), nullptr);
  EXPECT_NE(cache.get("d"), nullptr);
}

TEST(ResultCache, TinyLfuProtectsFrequentEntriesFromAScan) {
  // A working set used often, then a long scan of one-off keys: LRU loses the working set,
  // W-TinyLFU keeps it (the one-offs are not admitted over more frequent entries).
  auto run = [](ResultCacheConfig::Policy policy) {
    ManualClock clock;
    ResultCache cache({"t", 1000, 1h, policy, 1}, clock);
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 500; ++i) {
        const std::string k = "hot" + std::to_string(i);
        if (!cache.get(k)) cache.put(k, "", "v");
      }
    }
    for (int i = 0; i < 20000; ++i) {
      const std::string k = "scan" + std::to_string(i);
      if (!cache.get(k)) cache.put(k, "", "v");
    }
    int kept = 0;
    for (int i = 0; i < 500; ++i) kept += cache.get("hot" + std::to_string(i)) ? 1 : 0;
    return kept;
  };
  EXPECT_EQ(run(ResultCacheConfig::Policy::kLru), 0);
  EXPECT_GE(run(ResultCacheConfig::Policy::kWTinyLfu), 480);
}

// Hit rate on a Zipf(0.99) stream: W-TinyLFU beats LRU clearly (the benchmark measures the full
// comparison with Caffeine; this guards the policy against regressions).
TEST(ResultCache, BeatsLruOnZipf) {
  const int keys = 20000;
  std::vector<double> cdf(keys);
  double sum = 0;
  for (int i = 0; i < keys; ++i) cdf[i] = (sum += 1.0 / std::pow(i + 1, 0.99));
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<int> trace(200000);
  for (auto& t : trace) t = static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
  auto hit_rate = [&](ResultCacheConfig::Policy policy) {
    ManualClock clock;
    ResultCache cache({"t", 400, 1h, policy, 1}, clock);
    for (int k : trace) {
      const std::string key = std::to_string(k);
      if (!cache.get(key)) cache.put(key, "", "v");
    }
    return cache.stats().hit_rate();
  };
  const double lru = hit_rate(ResultCacheConfig::Policy::kLru);
  const double tlfu = hit_rate(ResultCacheConfig::Policy::kWTinyLfu);
  EXPECT_GT(tlfu - lru, 0.05) << "lru " << lru << " w-tinylfu " << tlfu;
}

TEST(ResultCache, SingleFlightComputesOnceForConcurrentMisses) {
  ResultCache cache({"t", 100, 1h});
  std::atomic<int> computed{0};
  std::latch go(8);
  std::vector<std::thread> threads;
  std::vector<ResultCache::Result> results(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      results[t] = cache.get_or_compute("same-task", "ns", [&] {
        computed.fetch_add(1);
        // A slow LLM call: it finishes only once all seven others are waiting for it.
        EXPECT_TRUE(testing::eventually([&] { return cache.stats().single_flight_shared >= 7; }));
        return std::string("generated");
      });
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(computed.load(), 1);
  int fresh = 0;
  for (const auto& r : results) {
    ASSERT_NE(r.value, nullptr);
    EXPECT_EQ(*r.value, "generated");
    fresh += r.cached ? 0 : 1;
  }
  EXPECT_EQ(fresh, 1) << "exactly one caller computed; the others are marked cached";
}

TEST(ResultCache, AFailedComputationReachesEveryWaiterAndIsNotStored) {
  ResultCache cache({"t", 100, 1h});
  EXPECT_THROW(cache.get_or_compute("k", "ns", []() -> std::string { throw std::runtime_error("503"); }),
               std::runtime_error);
  EXPECT_EQ(cache.get("k"), nullptr);
  auto r = cache.get_or_compute("k", "ns", [] { return std::string("ok"); });
  EXPECT_FALSE(r.cached);
  EXPECT_TRUE(cache.get_or_compute("k", "ns", [] { return std::string("again"); }).cached);
}

struct RecordingListener : ResultCache::Listener {
  std::vector<std::string> events;
  void on_put(const std::string& key, const std::string& ns, const Value& value, Duration ttl) override {
    events.push_back("put " + key + " " + ns + " " + *value + " " +
                     std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ttl).count()));
  }
  void on_invalidate(const std::string& key) override { events.push_back("invalidate " + key); }
  void on_invalidate_namespace(const std::string& ns, const std::vector<std::string>& keys) override {
    events.push_back("invalidate_namespace " + ns + " " + std::to_string(keys.size()));
  }
};

TEST(ResultCache, TheListenerSeesLocalChangesOnly) {
  ManualClock clock;
  ResultCache cache({"t", 100, 1h}, clock);
  RecordingListener listener;
  cache.set_listener(&listener);
  cache.put("a", "ns", "1");
  cache.apply_remote_put("b", "ns", "2", 30s);
  cache.invalidate("a");
  cache.apply_remote_invalidate("b");
  cache.put("c", "ns", "3", 5s);
  cache.invalidate_namespace("ns");
  cache.set_listener(nullptr);
  EXPECT_EQ(listener.events,
            (std::vector<std::string>{"put a ns 1 3600", "invalidate a", "put c ns 3 5", "invalidate_namespace ns 1"}));
  EXPECT_EQ(cache.stats().remote_applied, 1);
}

TEST(ResultCache, ShardedCacheUnderConcurrentLoad) {
  ResultCache cache({"t", 10000, 1h});  // 8 shards
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const std::string k = std::to_string((i * 7 + t) % 15000);
        if (auto v = cache.get(k)) {
          EXPECT_EQ(*v, "v" + k);
        } else {
          cache.put(k, "ns", "v" + k);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, 80000);
  EXPECT_LE(s.entries, 10000u);
  EXPECT_GT(s.hits, 0);
}

}  // namespace
}  // namespace agentline::cache
