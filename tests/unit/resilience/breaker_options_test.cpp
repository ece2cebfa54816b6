#include "agentline/resilience/breaker_options.h"

#include <gtest/gtest.h>

namespace agentline::resilience {
namespace {

using namespace std::chrono_literals;

TEST(BreakerOptionsTest, EveryFieldIsAFlagWithTheServicesDefaultsAndIsValidated) {
  CircuitBreakerConfig c;
  c.open_wait = 10s;
  c.minimum_calls = 10;
  config::OptionSet o("svc", "test");
  bind_breaker_options(o, "breaker-", c, "the target");
  o.parse(std::vector<std::string>{"--breaker-failure-rate", "25", "--breaker-window", "40", "--breaker-open-wait-ms",
                                   "10m", "--breaker-slow-call-ms", "1500", "--breaker-probes", "2",
                                   "--breaker-successes", "4"});
  EXPECT_EQ(c.failure_rate_threshold, 25);
  EXPECT_EQ(c.window_size, 40);
  EXPECT_EQ(c.minimum_calls, 10) << "the service's default stays";
  EXPECT_EQ(c.open_wait, 10min);
  EXPECT_EQ(c.max_open_wait, 10min) << "raised to the open wait";
  EXPECT_EQ(c.slow_call_duration, 1500ms);
  EXPECT_EQ(c.half_open_max_probes, 2);
  EXPECT_EQ(c.half_open_successes_to_close, 4);

  CircuitBreakerConfig bad;
  config::OptionSet o2("svc", "test");
  bind_breaker_options(o2, "breaker-", bad, "the LLM");
  EXPECT_THROW(o2.parse(std::vector<std::string>{"--breaker-failure-rate", "150"}), config::ConfigError);
}

}  // namespace
}  // namespace agentline::resilience
