#include "agentline/resilience/bulkhead.h"
#include "agentline/resilience/sliding_window.h"
#include "agentline/resilience/token_bucket.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

namespace agentline::resilience {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, BurstThenSteadyRate) {
  ManualClock clock;
  TokenBucket bucket(2, 5, clock);  // 2/s, burst 5
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.try_acquire()) << i;
  auto refused = bucket.try_acquire();
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.retry_after, 500ms);
  clock.advance(500ms);
  EXPECT_TRUE(bucket.try_acquire());
  EXPECT_FALSE(bucket.try_acquire());
  clock.advance(1h);
  EXPECT_DOUBLE_EQ(bucket.available(), 5) << "never above the burst";
  EXPECT_EQ(bucket.try_acquire(6).retry_after, Duration::max()) << "more than the burst never fits";
}

TEST(KeyedRateLimiter, EachTenantHasItsOwnBucket) {
  ManualClock clock;
  KeyedRateLimiterConfig config;
  config.rate_per_second = 1;
  config.burst = 2;
  config.overrides["big-tenant"] = {10, 10};
  KeyedRateLimiter limiter("tenants", config, clock);
  EXPECT_TRUE(limiter.try_acquire("acme"));
  EXPECT_TRUE(limiter.try_acquire("acme"));
  EXPECT_FALSE(limiter.try_acquire("acme"));
  EXPECT_TRUE(limiter.try_acquire("globex")) << "another tenant is not affected";
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.try_acquire("big-tenant")) << i;
  EXPECT_FALSE(limiter.try_acquire("big-tenant"));
  EXPECT_EQ(limiter.rejected(), 2);
  limiter.set_limit("acme", 100, 100);
  clock.advance(1s);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(limiter.try_acquire("acme")) << i;
}

TEST(KeyedRateLimiter, IdleKeysAreDroppedBeyondTheBound) {
  ManualClock clock;
  KeyedRateLimiterConfig config;
  config.rate_per_second = 1;
  config.burst = 1;
  config.max_keys = 100;
  KeyedRateLimiter limiter("tenants", config, clock);
  for (int i = 0; i < 100; ++i) limiter.try_acquire("t" + std::to_string(i));
  EXPECT_EQ(limiter.keys(), 100u);
  clock.advance(2s);  // all refilled: they carry no state
  limiter.try_acquire("newcomer");
  EXPECT_EQ(limiter.keys(), 1u);
}

TEST(SlidingWindowLimiter, PerMinuteAndPerHourLimits) {
  ManualClock clock;
  SlidingWindowLimiter limiter("api", {{"minute", 1min, 3}, {"hour", 1h, 5}}, clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire()) << i;
  auto refused = limiter.try_acquire();
  EXPECT_FALSE(refused);
  EXPECT_GT(refused.retry_after, 59s);
  EXPECT_LE(refused.retry_after, 61s);
  clock.advance(refused.retry_after);
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_TRUE(limiter.try_acquire());
  clock.advance(2min);
  EXPECT_FALSE(limiter.try_acquire()) << "five in the last hour";
  EXPECT_EQ(limiter.rejected("hour"), 1);
  EXPECT_EQ(limiter.rejected("minute"), 1);
  clock.advance(1h);
  EXPECT_TRUE(limiter.try_acquire());
}

TEST(Bulkhead, LeasesBoundConcurrency) {
  Bulkhead bulkhead("uploads", 2);
  auto a = bulkhead.try_acquire();
  auto b = bulkhead.try_acquire();
  EXPECT_TRUE(a && b);
  EXPECT_FALSE(bulkhead.try_acquire());
  a.release();
  EXPECT_EQ(bulkhead.in_flight(), 1);
  {
    auto c = bulkhead.try_acquire();
    EXPECT_TRUE(c);
  }
  EXPECT_EQ(bulkhead.in_flight(), 1);
  bulkhead.set_max(1);
  EXPECT_FALSE(bulkhead.try_acquire());
  EXPECT_EQ(bulkhead.rejected(), 2);
}

TEST(SlidingWindowLimiter, StressNeverOverAdmits) {
  // Threads race within each step; the clock moves between steps (a barrier), so every
  // admission's time is known exactly.
  ManualClock clock;
  SlidingWindowLimiter limiter("stress", {{"minute", 1min, 50}}, clock);
  constexpr int kThreads = 4;
  std::mutex mu;
  std::vector<TimePoint> admitted;
  std::barrier step(kThreads, [&]() noexcept { clock.advance(211ms); });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<TimePoint> mine;
      for (int i = 0; i < 2000; ++i) {
        const TimePoint now = clock.now();
        for (int k = 0; k < 3; ++k) {
          if (limiter.try_acquire()) mine.push_back(now);
        }
        step.arrive_and_wait();
      }
      std::lock_guard lock(mu);
      admitted.insert(admitted.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  std::sort(admitted.begin(), admitted.end());
  ASSERT_GT(admitted.size(), 200u);
  std::size_t lo = 0;
  std::size_t worst = 0;
  for (std::size_t hi = 0; hi < admitted.size(); ++hi) {
    while (admitted[lo] < admitted[hi] - std::chrono::minutes(1)) ++lo;
    worst = std::max(worst, hi - lo + 1);
  }
  EXPECT_LE(worst, 50u);
  EXPECT_GE(worst, 45u) << "the limit is reached, not just respected";
}

}  // namespace
}  // namespace agentline::resilience
