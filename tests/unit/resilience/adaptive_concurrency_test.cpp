// The adaptive limit on LLM calls in flight (AIMD): grows while calls succeed at the limit, halves
// on a 429 once per cooldown, backs off when latency rises above the baseline. ManualClock only.
#include "agentline/resilience/adaptive_concurrency.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace agentline::resilience {
namespace {

AdaptiveConcurrencyConfig config(int min, int max, int initial) {
  AdaptiveConcurrencyConfig c;
  c.min_limit = min;
  c.max_limit = max;
  c.initial_limit = initial;
  return c;
}

TEST(AdaptiveConcurrency, DoublesPerRoundUntilTheFirstOverloadThenGrowsByAboutOnePerRound) {
  ManualClock clock;
  AdaptiveConcurrency limit("llm", config(1, 64, 4), clock);
  for (int i = 0; i < 4; ++i) limit.on_success(1.0, 4);
  EXPECT_EQ(limit.limit(), 8) << "slow start: a round of four successes doubles four";
  for (int i = 0; i < 8; ++i) limit.on_success(1.0, 8);
  EXPECT_EQ(limit.limit(), 16);
  limit.on_overload();
  EXPECT_EQ(limit.limit(), 8);
  for (int i = 0; i < 8; ++i) limit.on_success(1.0, 8);
  EXPECT_EQ(limit.limit(), 8) << "1/limit per success: just short of one more after a round of eight";
  limit.on_success(1.0, 8);
  EXPECT_EQ(limit.limit(), 9);
  for (int i = 0; i < 5000; ++i) limit.on_success(1.0, limit.limit());
  EXPECT_EQ(limit.limit(), 64) << "never above --llm-max-in-flight";
}

TEST(AdaptiveConcurrency, AnIdleLimitDoesNotGrow) {
  ManualClock clock;
  AdaptiveConcurrency limit("llm", config(1, 16, 8), clock);
  for (int i = 0; i < 100; ++i) limit.on_success(1.0, 2);
  EXPECT_EQ(limit.limit(), 8) << "two calls in flight say nothing about whether the backend takes nine";
}

TEST(AdaptiveConcurrency, A429HalvesItOncePerCooldownDownToTheMinimumAndSuccessBringsItBack) {
  ManualClock clock;
  AdaptiveConcurrency limit("llm", config(2, 16, 16), clock);
  limit.on_overload();
  EXPECT_EQ(limit.limit(), 8);
  for (int i = 0; i < 7; ++i) limit.on_overload();
  EXPECT_EQ(limit.limit(), 8) << "the calls already in flight answer 429 too: one halving per cooldown";
  clock.advance(std::chrono::seconds(1));
  limit.on_overload();
  EXPECT_EQ(limit.limit(), 4);
  for (int i = 0; i < 3; ++i) {
    clock.advance(std::chrono::seconds(1));
    limit.on_overload();
  }
  EXPECT_EQ(limit.limit(), 2) << "never below --llm-min-in-flight";
  for (int i = 0; i < 100; ++i) limit.on_success(1.0, limit.limit());
  EXPECT_GE(limit.limit(), 12) << "additive increase climbs back while calls succeed";
  EXPECT_EQ(limit.stats().decreases, 3) << "16 -> 8 -> 4 -> 2; at the minimum nothing more to take";
}

TEST(AdaptiveConcurrency, LatencyAboveTheBaselineBacksOffAndStopsGrowth) {
  ManualClock clock;
  AdaptiveConcurrency limit("llm", config(1, 32, 10), clock);
  for (int i = 0; i < 50; ++i) limit.on_success(1.0, 10);
  const int before = limit.limit();
  // The backend starts queueing: each call takes three times as long per token.
  for (int i = 0; i < 20; ++i) {
    clock.advance(std::chrono::seconds(1));
    limit.on_success(3.0, limit.limit());
  }
  EXPECT_LT(limit.limit(), before);
  EXPECT_GT(limit.stats().latency_decreases, 0);
  EXPECT_NEAR(limit.stats().baseline, 1.0, 0.5) << "the baseline rises only slowly with slow calls";
  // Fast again: growth resumes.
  const int low = limit.limit();
  for (int i = 0; i < 100; ++i) limit.on_success(1.0, limit.limit());
  EXPECT_GT(limit.limit(), low);
}

TEST(AdaptiveConcurrency, RefusesABadConfiguration) {
  ManualClock clock;
  EXPECT_THROW(AdaptiveConcurrency("x", config(0, 4, 2), clock), std::invalid_argument);
  EXPECT_THROW(AdaptiveConcurrency("x", config(4, 2, 2), clock), std::invalid_argument);
  EXPECT_EQ(AdaptiveConcurrency("x", config(2, 4, 100), clock).limit(), 4) << "the initial limit is clamped";
}

}  // namespace
}  // namespace agentline::resilience
