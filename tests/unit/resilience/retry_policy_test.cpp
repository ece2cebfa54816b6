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

}  // namespace
}  // namespace agentline::resilience
