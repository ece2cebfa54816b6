// service::PeriodicTask: the one way a service runs a background loop.
#include "agentline/service/periodic_task.h"

#include "eventually.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace agentline::service {
namespace {

using namespace std::chrono_literals;

using testing::eventually;

TEST(PeriodicTask, RunsAtOnceThenWaitsTheIntervalUnlessWokenOrMoreWorkWaits) {
  std::atomic<int> ticks{0};
  std::atomic<int> backlog{3};  // three ticks' worth of work: they run back to back
  PeriodicTask task("test", 1h, [&] {
    ++ticks;
    return backlog.fetch_sub(1) > 1;
  });
  ASSERT_TRUE(eventually([&] { return ticks.load() == 3; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ticks.load(), 3) << "no more work: it waits the (hour-long) interval";
  task.wake();
  ASSERT_TRUE(eventually([&] { return ticks.load() == 4; })) << "wake() runs the next tick now";
  const auto before = std::chrono::steady_clock::now();
  task.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s) << "stop() does not wait out the interval";
  task.wake();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ticks.load(), 4) << "no tick after stop()";
}

TEST(PeriodicTask, AThrowingTickIsLoggedAndTheLoopCarriesOn) {
  std::atomic<int> ticks{0};
  PeriodicTask task("test", 1ms, [&]() -> bool {
    if (++ticks < 3) throw std::runtime_error("kaput");
    return false;
  });
  EXPECT_TRUE(eventually([&] { return ticks.load() >= 5; }));
}

TEST(PeriodicTask, StopWaitsForTheRunningTick) {
  std::atomic<bool> in_tick{false}, finished{false};
  PeriodicTask task("test", 1h, [&] {
    in_tick = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
    return false;
  });
  ASSERT_TRUE(eventually([&] { return in_tick.load(); }));
  task.stop();
  EXPECT_TRUE(finished.load());
}

}  // namespace
}  // namespace agentline::service
