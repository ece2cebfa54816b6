#include "agentline/resilience/circuit_breaker.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <thread>

namespace agentline::resilience {
namespace {

using namespace std::chrono_literals;

CircuitBreakerConfig small_window() {
  CircuitBreakerConfig c;
  c.window_size = 10;
  c.minimum_calls = 5;
  c.failure_rate_threshold = 50;
  c.slow_call_duration = 0s;
  c.open_wait = 30s;
  c.half_open_max_probes = 1;
  c.half_open_successes_to_close = 3;
  return c;
}

void call(CircuitBreaker& cb, bool ok) {
  auto p = cb.try_acquire();
  ASSERT_TRUE(p) << "refused while " << to_string(cb.state());
  ok ? p.success() : p.failure();
}

// Outcome sequences (S = success, F = failure) and the state after the last call.
struct TripCase {
  const char* outcomes;
  BreakerState expected;
};

class TripTable : public ::testing::TestWithParam<TripCase> {};

TEST_P(TripTable, FailureRateTripsOnlyAfterMinimumCalls) {
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  for (const char* c = GetParam().outcomes; *c != '\0'; ++c) call(cb, *c == 'S');
  EXPECT_EQ(cb.state(), GetParam().expected) << GetParam().outcomes;
}

INSTANTIATE_TEST_SUITE_P(CountWindow, TripTable,
                         ::testing::Values(TripCase{"FFFF", BreakerState::kClosed},       // below minimum_calls
                                           TripCase{"FFFFF", BreakerState::kOpen},        // 100% of 5
                                           TripCase{"SSSFF", BreakerState::kClosed},      // 40%
                                           TripCase{"SSFFF", BreakerState::kOpen},        // 60%
                                           TripCase{"SSSSSFFFF", BreakerState::kClosed},  // 44%
                                           TripCase{"SSSSSFFFFF", BreakerState::kOpen},   // exactly 50%
                                           // The window slides: the old successes leave it.
                                           TripCase{"SSSSSSSSSSFFFFF", BreakerState::kOpen},
                                           TripCase{"FFSSSSSSSSSSFF", BreakerState::kClosed}));

TEST(CircuitBreaker, SlowCallsTripItEvenWhenTheyAllSucceed) {
  ManualClock clock;
  auto config = small_window();
  config.slow_call_duration = 2s;
  config.slow_call_rate_threshold = 60;
  CircuitBreaker cb("llm", config, clock);
  for (int i = 0; i < 2; ++i) cb.try_acquire().success(1s);
  for (int i = 0; i < 2; ++i) cb.try_acquire().success(3s);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);  // 4 calls: below minimum
  auto p = cb.try_acquire();
  clock.advance(5s);  // measured by the breaker's clock
  p.success();
  EXPECT_EQ(cb.state(), BreakerState::kOpen);  // 3 of 5 slow = 60%
  EXPECT_EQ(cb.snapshot().slow_calls, 3);
  EXPECT_EQ(cb.snapshot().failed_calls, 0);
}

TEST(CircuitBreaker, OpenRejectsUntilTheWaitThenAdmitsOneProbe) {
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  for (int i = 0; i < 5; ++i) call(cb, false);
  ASSERT_EQ(cb.state(), BreakerState::kOpen);
  EXPECT_FALSE(cb.try_acquire());
  EXPECT_EQ(cb.retry_after(), 30s);
  clock.advance(29s);
  EXPECT_FALSE(cb.try_acquire());
  EXPECT_EQ(cb.retry_after(), 1s);
  clock.advance(1s);
  auto probe = cb.try_acquire();
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe.is_probe());
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(cb.try_acquire()) << "only one probe at a time";
  EXPECT_EQ(cb.snapshot().not_permitted_calls, 3);
}

TEST(CircuitBreaker, HalfOpenClosesAfterEnoughSuccessfulProbes) {
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  for (int i = 0; i < 5; ++i) call(cb, false);
  clock.advance(30s);
  for (int i = 0; i < 2; ++i) {
    call(cb, true);
    EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  }
  call(cb, true);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  // A fresh window: four failures do not trip it again.
  for (int i = 0; i < 4; ++i) call(cb, false);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, AFailedProbeReopensWithAGrowingWait) {
  ManualClock clock;
  auto config = small_window();
  config.open_wait = 10s;
  config.open_wait_multiplier = 2;
  config.max_open_wait = 30s;
  CircuitBreaker cb("llm", config, clock);
  for (int i = 0; i < 5; ++i) call(cb, false);
  EXPECT_EQ(cb.retry_after(), 10s);
  for (Duration expected : {Duration(20s), Duration(30s), Duration(30s)}) {
    clock.advance(cb.retry_after());
    call(cb, false);  // the probe fails
    EXPECT_EQ(cb.state(), BreakerState::kOpen);
    EXPECT_EQ(cb.retry_after(), expected);
  }
  clock.advance(cb.retry_after());
  for (int i = 0; i < 3; ++i) call(cb, true);
  ASSERT_EQ(cb.state(), BreakerState::kClosed);
  for (int i = 0; i < 5; ++i) call(cb, false);
  EXPECT_EQ(cb.retry_after(), 10s) << "the wait starts over after closing";
  EXPECT_EQ(cb.snapshot().times_opened, 5);
}

TEST(CircuitBreaker, ALostProbeGivesItsSlotBack) {
  // resilience4j #903/#1432: a probe whose outcome is never recorded wedges HALF_OPEN. Here the
  // permit's destructor returns the slot.
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  for (int i = 0; i < 5; ++i) call(cb, false);
  clock.advance(30s);
  {
    auto lost = cb.try_acquire();
    ASSERT_TRUE(lost);
    EXPECT_FALSE(cb.try_acquire());
  }  // dropped: an exception, a cancelled call...
  auto next = cb.try_acquire();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next.is_probe());
  EXPECT_EQ(cb.snapshot().ignored_calls, 1);
  // A moved-from permit releases nothing twice.
  CircuitBreaker::Permit moved = std::move(next);
  EXPECT_FALSE(next);
  moved.success();
  EXPECT_EQ(cb.snapshot().probes_in_flight, 0);
}

TEST(CircuitBreaker, OutcomesOfPermitsFromAnEarlierStateAreIgnored) {
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  auto early = cb.try_acquire();  // taken while CLOSED
  for (int i = 0; i < 5; ++i) call(cb, false);
  clock.advance(30s);
  auto probe = cb.try_acquire();
  ASSERT_TRUE(probe);
  early.failure();  // late news from before the trip
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen) << "a stale failure must not reopen the breaker";
  probe.success();
  EXPECT_EQ(cb.snapshot().probes_in_flight, 0);
}

TEST(CircuitBreaker, ForcedOpenDisabledAndReset) {
  ManualClock clock;
  CircuitBreaker cb("llm", small_window(), clock);
  cb.force_open();
  EXPECT_EQ(cb.state(), BreakerState::kForcedOpen);
  clock.advance(1h);
  EXPECT_FALSE(cb.try_acquire()) << "forced open does not time out";
  cb.disable();
  for (int i = 0; i < 50; ++i) call(cb, false);
  EXPECT_EQ(cb.state(), BreakerState::kDisabled) << "disabled never trips";
  cb.reset();
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(cb.snapshot().window_calls, 0);
}

TEST(CircuitBreaker, TimeBasedWindowForgetsOldFailures) {
  ManualClock clock;
  auto config = small_window();
  config.window = CircuitBreakerConfig::Window::kTimeBased;
  config.window_size = 10;  // seconds
  CircuitBreaker cb("llm", config, clock);
  for (int i = 0; i < 4; ++i) call(cb, false);
  clock.advance(11s);
  for (int i = 0; i < 4; ++i) call(cb, true);
  call(cb, false);
  EXPECT_EQ(cb.state(), BreakerState::kClosed) << "1 failure of 5 in the last 10 s";
  EXPECT_EQ(cb.snapshot().window_calls, 5);
  for (int i = 0; i < 2; ++i) call(cb, false);
  EXPECT_EQ(cb.state(), BreakerState::kClosed) << "3 of 7";
  call(cb, false);
  EXPECT_EQ(cb.state(), BreakerState::kOpen) << "4 of 8";
}

TEST(CircuitBreaker, ListenersSeeEveryTransitionInOrder) {
  ManualClock clock;
  CircuitBreakerRegistry registry(small_window(), clock);
  std::vector<std::string> seen;
  registry.add_listener([&](const CircuitBreaker& cb, BreakerState from, BreakerState to) {
    seen.push_back(cb.name() + ":" + std::string(to_string(from)) + "->" + std::string(to_string(to)));
  });
  auto& cb = registry.get("openai");
  EXPECT_EQ(&cb, &registry.get("openai"));
  for (int i = 0; i < 5; ++i) call(cb, false);
  clock.advance(30s);
  for (int i = 0; i < 3; ++i) call(cb, true);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"openai:closed->open", "openai:open->half_open", "openai:half_open->closed"}));
}

TEST(CircuitBreakerRegistry, PerNameConfigAndMetrics) {
  ManualClock clock;
  CircuitBreakerRegistry registry(small_window(), clock);
  auto strict = small_window();
  strict.minimum_calls = 1;
  registry.configure("webhook", strict);
  call(registry.get("webhook"), false);
  call(registry.get("openai"), false);
  EXPECT_EQ(registry.get("webhook").state(), BreakerState::kOpen);
  EXPECT_EQ(registry.get("openai").state(), BreakerState::kClosed);
  EXPECT_THROW(registry.configure("webhook", strict), std::invalid_argument) << "already in use";

  std::vector<prometheus::MetricFamily> families;
  registry.append_metrics(families);
  auto value = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& f : families) {
      if (f.name != name) continue;
      for (const auto& m : f.metric) {
        bool match = true;
        for (const auto& [k, v] : labels) {
          bool found = false;
          for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
          match = match && found;
        }
        if (match) return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
      }
    }
    return -99.0;
  };
  EXPECT_EQ(value("agentline_breaker_state", {{"breaker", "webhook"}, {"state", "open"}}), 1);
  EXPECT_EQ(value("agentline_breaker_state", {{"breaker", "openai"}, {"state", "open"}}), 0);
  EXPECT_EQ(value("agentline_breaker_transitions_total", {{"breaker", "webhook"}, {"from", "closed"}, {"to", "open"}}),
            1);
  EXPECT_EQ(value("agentline_breaker_opened_total", {{"breaker", "webhook"}}), 1);
  EXPECT_EQ(value("agentline_breaker_failure_rate_percent", {{"breaker", "webhook"}}), 100);
  EXPECT_EQ(value("agentline_breaker_failure_rate_percent", {{"breaker", "openai"}}), -1) << "below minimum_calls";
}

TEST(CircuitBreaker, InvalidConfigIsRefusedWithTheFieldName) {
  auto bad = small_window();
  bad.failure_rate_threshold = 0;
  try {
    CircuitBreaker cb("x", bad);
    FAIL() << "accepted a zero threshold";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("failure_rate_threshold"), std::string::npos);
  }
  bad = small_window();
  bad.half_open_max_probes = 0;
  EXPECT_THROW(CircuitBreaker("x", bad), std::invalid_argument);
}

TEST(CircuitBreaker, ConcurrentCallersNeverExceedTheProbeBudget) {
  ManualClock clock;
  auto config = small_window();
  config.half_open_max_probes = 2;
  config.half_open_successes_to_close = 4000;  // stay half-open for the test
  CircuitBreaker cb("llm", config, clock);
  for (int i = 0; i < 5; ++i) call(cb, false);
  clock.advance(30s);
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  std::atomic<std::int64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        auto p = cb.try_acquire();
        if (!p) continue;
        const int now = holding.fetch_add(1) + 1;
        int prev = most.load();
        while (now > prev && !most.compare_exchange_weak(prev, now)) {
        }
        admitted.fetch_add(1);
        holding.fetch_sub(1);
        if (i % 100 == 0) {
          p.success();
        } else {
          p.ignore();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  EXPECT_EQ(cb.snapshot().probes_in_flight, 0) << "every probe slot came back";
}

}  // namespace
}  // namespace agentline::resilience
