#include "agentline/resilience/retry_policy.h"

#include <gtest/gtest.h>

#include <set>

namespace agentline::resilience {
namespace {

using namespace std::chrono_literals;

struct BackoffCase {
  RetryPolicyConfig::Backoff backoff;
  std::vector<Duration> expected;  // retries 1..n
};

class BackoffTable : public ::testing::TestWithParam<BackoffCase> {};

TEST_P(BackoffTable, DelaysPerRetry) {
  RetryPolicyConfig c;
  c.backoff = GetParam().backoff;
  c.base = 2s;
  c.max_delay = 20s;
  RetryPolicy policy(c);
  for (std::size_t i = 0; i < GetParam().expected.size(); ++i) {
    EXPECT_EQ(policy.delay(static_cast<int>(i) + 1), GetParam().expected[i]) << "retry " << i + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, BackoffTable,
                         ::testing::Values(
                             // The seed's 2, 4, 8 s, then capped.
                             BackoffCase{RetryPolicyConfig::Backoff::kExponential, {2s, 4s, 8s, 16s, 20s, 20s}},
                             BackoffCase{RetryPolicyConfig::Backoff::kLinear, {2s, 4s, 6s, 8s, 10s}},
                             BackoffCase{RetryPolicyConfig::Backoff::kFixed, {2s, 2s, 2s}}));

TEST(RetryPolicy, RetryAfterOverridesTheScheduleWithinItsCap) {
  RetryPolicyConfig c;
  c.max_retry_after = 60s;
  RetryPolicy policy(c);
  EXPECT_EQ(policy.delay(1, 0s, Duration(30s)), 30s);
  EXPECT_EQ(policy.delay(3, 0s, Duration(1s)), 1s) << "shorter than the schedule: the server knows";
  EXPECT_EQ(policy.delay(1, 0s, Duration(1h)), 60s);
  c.honour_retry_after = false;
  EXPECT_EQ(RetryPolicy(c).delay(1, 0s, Duration(30s)), 2s);
}

TEST(RetryPolicy, JitterStaysWithinItsRangeAndVaries) {
  RetryPolicyConfig c;
  c.base = 1s;
  c.max_delay = 100s;
  c.jitter = RetryPolicyConfig::Jitter::kFull;
  RetryPolicy full(c, 42);
  std::set<Duration::rep> seen;
  for (int i = 0; i < 200; ++i) {
    const Duration d = full.delay(4);  // up to 8 s
    EXPECT_GE(d, 0s);
    EXPECT_LT(d, 8s);
    seen.insert(d.count());
  }
  EXPECT_GT(seen.size(), 150u);
  c.jitter = RetryPolicyConfig::Jitter::kEqual;
  RetryPolicy equal(c, 42);
  for (int i = 0; i < 200; ++i) {
    const Duration d = equal.delay(4);
    EXPECT_GE(d, 4s);
    EXPECT_LT(d, 8s);
  }
}

TEST(RetryPolicy, DecorrelatedJitterGrowsFromThePreviousDelayUpToTheCap) {
  RetryPolicyConfig c;
  c.backoff = RetryPolicyConfig::Backoff::kDecorrelatedJitter;
  c.base = 1s;
  c.max_delay = 30s;
  RetryPolicy policy(c, 7);
  Duration previous = 0s;
  Duration largest = 0s;
  for (int i = 1; i <= 50; ++i) {
    const Duration d = policy.delay(i, previous);
    EXPECT_GE(d, 1s);
    EXPECT_LE(d, std::max(Duration(3s), previous * 3));
    EXPECT_LE(d, 30s);
    largest = std::max(largest, d);
    previous = d;
  }
  EXPECT_GT(largest, 15s) << "it reaches the upper range";
}

TEST(RetryPolicy, AttemptsAreBounded) {
  RetryPolicyConfig c;
  c.max_attempts = 3;
  RetryPolicy policy(c);
  EXPECT_TRUE(policy.allows(1));
  EXPECT_TRUE(policy.allows(2));
  EXPECT_FALSE(policy.allows(3));
  c.max_delay = 1s;
  EXPECT_THROW(RetryPolicy{c}, std::invalid_argument) << "max_delay below base";
}

TEST(RetryBudget, RetriesAreAShareOfCallsSoAnOutageIsNotMultiplied) {
  ManualClock clock;
  RetryBudget budget({0.2, 0, 10s}, clock);
  for (int i = 0; i < 100; ++i) budget.record_call();
  int retried = 0;
  for (int i = 0; i < 100; ++i) retried += budget.try_spend_retry() ? 1 : 0;  // every call failed
  EXPECT_EQ(retried, 20);
  EXPECT_EQ(budget.stats().retries_refused, 80);
  clock.advance(11s);  // the window moved on
  EXPECT_FALSE(budget.try_spend_retry()) << "no calls in the window: no budget";
  for (int i = 0; i < 10; ++i) budget.record_call();
  EXPECT_TRUE(budget.try_spend_retry());
  EXPECT_TRUE(budget.try_spend_retry());
  EXPECT_FALSE(budget.try_spend_retry());
}

TEST(RetryBudget, AFloorLetsQuietServicesRetry) {
  ManualClock clock;
  RetryBudget budget({0.1, 0.5, 10s}, clock);  // 5 retries per 10 s without any calls
  int retried = 0;
  for (int i = 0; i < 10; ++i) retried += budget.try_spend_retry() ? 1 : 0;
  EXPECT_EQ(retried, 5);
}

TEST(AdaptiveThrottle, HalvesOn429DownToTheFloorAndGrowsBackInSteps) {
  ManualClock clock;
  AdaptiveThrottleConfig c;
  c.max_rate = 16;
  c.min_rate = 1;
  c.increase_step = 2;
  c.increase_interval = 10s;
  c.decrease_cooldown = 1s;
  AdaptiveThrottle throttle(c, clock);
  throttle.on_throttled();
  EXPECT_DOUBLE_EQ(throttle.rate(), 8);
  throttle.on_throttled();  // same burst of 429s
  EXPECT_DOUBLE_EQ(throttle.rate(), 8);
  for (double expected : {4.0, 2.0, 1.0, 1.0}) {
    clock.advance(1s);
    throttle.on_throttled();
    EXPECT_DOUBLE_EQ(throttle.rate(), expected);
  }
  EXPECT_EQ(throttle.decreases(), 4);
  clock.advance(9s);
  throttle.on_success();
  EXPECT_DOUBLE_EQ(throttle.rate(), 1) << "not before the interval";
  clock.advance(1s);
  throttle.on_success();
  EXPECT_DOUBLE_EQ(throttle.rate(), 3);
  clock.advance(30s);
  throttle.on_success();
  EXPECT_DOUBLE_EQ(throttle.rate(), 9) << "three intervals: three steps";
  clock.advance(1h);
  throttle.on_success();
  EXPECT_DOUBLE_EQ(throttle.rate(), 16) << "never above the maximum";
}

TEST(AdaptiveThrottle, AdmitsAtTheCurrentRate) {
  ManualClock clock;
  AdaptiveThrottleConfig c;
  c.max_rate = 4;
  c.min_rate = 1;
  AdaptiveThrottle throttle(c, clock);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += throttle.try_acquire() ? 1 : 0;
  EXPECT_EQ(admitted, 4);   // the burst
  throttle.on_throttled();  // 2/s
  clock.advance(5s);
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += throttle.try_acquire() ? 1 : 0;
  EXPECT_EQ(admitted, 4) << "bucket full again (burst 4) after 5 s at 2/s";
  clock.advance(1s);
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += throttle.try_acquire() ? 1 : 0;
  EXPECT_EQ(admitted, 2);
}

}  // namespace
}  // namespace agentline::resilience
