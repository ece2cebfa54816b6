#include "agentline/resilience/retry_schedule.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using agentline::resilience::exponential_delay;
using agentline::resilience::exponential_schedule;

TEST(RetrySchedule, DefaultTiersAreTwoFourEightSeconds) {
  auto tiers = exponential_schedule(3, 2000ms, 60000ms);
  ASSERT_EQ(tiers.size(), 3u);
  EXPECT_EQ(tiers[0], 2000ms);
  EXPECT_EQ(tiers[1], 4000ms);
  EXPECT_EQ(tiers[2], 8000ms);
}

TEST(RetrySchedule, DelaysStopAtTheCapWithoutOverflow) {
  struct Row {
    int attempt;
    std::chrono::milliseconds expected;
  } rows[] = {{0, 1000ms}, {1, 1000ms}, {2, 2000ms}, {5, 16000ms}, {6, 30000ms}, {64, 30000ms}, {100000, 30000ms}};
  for (const auto& row : rows) {
    EXPECT_EQ(exponential_delay(row.attempt, 1000ms, 30000ms), row.expected) << "attempt " << row.attempt;
  }
}
