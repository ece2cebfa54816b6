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

}  // namespace
}  // namespace agentline::resilience
