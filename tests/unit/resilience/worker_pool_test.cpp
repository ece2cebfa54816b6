#include "agentline/resilience/worker_pool.h"
#include "eventually.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>

#include "agentline/config/container_resources.h"
#include "agentline/resilience/adaptive_batcher.h"

namespace agentline::resilience {
namespace {

using namespace std::chrono_literals;
using config::ContainerResources;

TEST(AdaptiveBatcher, MovesTowardsTheTargetTimeWithinBounds) {
  AdaptiveBatcherConfig c;
  c.min_batch = 2;
  c.max_batch = 200;
  c.initial_batch = 10;
  c.target = 1s;
  c.smoothing = 1.0;  // follow the last batch exactly (easier to check)
  AdaptiveBatcher batcher(c);
  EXPECT_EQ(batcher.batch_size(), 10);
  batcher.record(10, 100ms);  // 10 ms per item: ideal 100
  EXPECT_EQ(batcher.batch_size(), 55);
  batcher.record(55, 550ms);
  EXPECT_EQ(batcher.batch_size(), 78);  // halfway again: 55 + (100 - 55) / 2
  for (int i = 0; i < 20; ++i) batcher.record(batcher.batch_size(), batcher.batch_size() * 10ms);
  EXPECT_EQ(batcher.batch_size(), 100);
  batcher.record(100, 10s);  // the backend slowed down 10x
  EXPECT_EQ(batcher.batch_size(), 55);
  for (int i = 0; i < 20; ++i) batcher.record(batcher.batch_size(), batcher.batch_size() * 1s);
  EXPECT_EQ(batcher.batch_size(), 2) << "never below min_batch";
  batcher.record(2, 1ns);
  for (int i = 0; i < 20; ++i) batcher.record(batcher.batch_size(), 1ns);
  EXPECT_EQ(batcher.batch_size(), 200) << "never above max_batch";
  const auto s = batcher.stats();
  EXPECT_EQ(s.batches, 64);
  EXPECT_GT(s.average_batch, 2);
}

TEST(AdaptiveBatcher, BoundsAndTargetChangeAtRunTime) {
  AdaptiveBatcher batcher({1, 100, 50, 1s, 1.0});
  batcher.set_bounds(1, 20);
  EXPECT_EQ(batcher.batch_size(), 20);
  batcher.set_target(100ms);
  batcher.record(20, 1s);  // 50 ms per item: ideal 2
  EXPECT_EQ(batcher.batch_size(), 11);
  EXPECT_THROW(batcher.set_bounds(5, 4), std::invalid_argument);
}

TEST(WorkerPool, GrowsWithTheQueueAndShrinksWhenIdle) {
  ManualClock clock;
  WorkerPoolConfig c;
  c.min_threads = 1;
  c.max_threads = 4;
  c.scale_up_queue_depth = 1;
  c.idle_timeout = 30s;
  WorkerPool pool("llm", c, clock);
  EXPECT_EQ(pool.stats().threads, 1);

  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::latch started(4);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(pool.submit([&] {
      started.count_down();
      gate.wait();
    }));
  }
  started.wait();  // four threads busy: the pool grew to its maximum
  auto s = pool.stats();
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.queued, 2u);
  EXPECT_EQ(s.peak_threads, 4);
  release.set_value();
  ASSERT_TRUE(testing::eventually([&] { return pool.stats().completed >= 6; }));
  ASSERT_TRUE(testing::eventually([&] { return pool.stats().idle >= 4; }));

  clock.advance(29s);
  pool.tick();
  EXPECT_EQ(pool.stats().threads, 4) << "not idle long enough";
  clock.advance(1s);
  pool.tick();
  ASSERT_TRUE(testing::eventually([&] { return pool.stats().threads <= 1; }));
  pool.tick();  // joins the retired threads
  s = pool.stats();
  EXPECT_EQ(s.threads, 1) << "back to min_threads";
  EXPECT_EQ(s.scale_downs, 3);
}

// A burst submitted faster than an idle thread wakes up must still start threads: the idle
// thread that was notified for the first task cannot take the second. (This raced: the pool
// once counted the notified thread as idle for every task of the burst and ran them one by one.)
TEST(WorkerPool, ABurstFasterThanAWakeUpStillGrowsThePool) {
  for (int round = 0; round < 200; ++round) {
    WorkerPoolConfig c;
    c.min_threads = 1;
    c.max_threads = 4;
    WorkerPool pool("burst", c);
    ASSERT_TRUE(testing::eventually([&] { return pool.stats().idle >= 1; }));
    std::mutex mu;
    std::condition_variable cv;
    int running = 0;
    bool release = false;
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(pool.submit([&] {
        std::unique_lock lock(mu);
        ++running;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      }));
    }
    {
      std::unique_lock lock(mu);
      const bool all_four = cv.wait_for(lock, 10s, [&] { return running == 4; });
      release = true;
      cv.notify_all();
      ASSERT_TRUE(all_four) << "round " << round << ": only " << running << " of 4 threads ran the burst";
    }
    pool.stop();
    ASSERT_EQ(pool.stats().completed, 6);
  }
}

TEST(WorkerPool, LimitsChangeAtRunTimeAndAFullQueueRefuses) {
  ManualClock clock;
  WorkerPoolConfig c;
  c.min_threads = 0;
  c.max_threads = 1;
  c.max_queue = 2;
  WorkerPool pool("uploads", c, clock);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::latch started(1);
  ASSERT_TRUE(pool.submit([&] {
    started.count_down();
    gate.wait();
  }));
  started.wait();
  EXPECT_TRUE(pool.submit([&] { gate.wait(); }));
  EXPECT_TRUE(pool.submit([&] { gate.wait(); }));
  EXPECT_FALSE(pool.submit([] {})) << "queue full";
  EXPECT_EQ(pool.stats().rejected, 1);
  pool.set_limits(3, 3);
  EXPECT_EQ(pool.stats().threads, 3) << "raising min_threads starts threads at once";
  release.set_value();
  pool.stop();
  EXPECT_EQ(pool.stats().completed, 3) << "stop() runs what was queued";
  EXPECT_FALSE(pool.submit([] {}));
  EXPECT_THROW(pool.set_limits(2, 1), std::invalid_argument);
}

TEST(WorkerPool, AThrowingTaskIsCountedAndTheWorkerCarriesOn) {
  WorkerPool pool("x", {1, 1, 1, 30s, 10});
  pool.submit([] { throw std::runtime_error("boom"); });
  std::promise<int> p;
  pool.submit([&] { p.set_value(7); });
  EXPECT_EQ(p.get_future().get(), 7);
  pool.stop();
  EXPECT_EQ(pool.stats().failed, 1);
}

class FakeCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("agentline-cgroup-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_ / "proc");
    std::filesystem::create_directories(root_ / "cg" / "cpu");
    std::filesystem::create_directories(root_ / "cg" / "memory");
    write("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:  100 kB\n");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(root_ / rel) << text; }
  ContainerResources detect() { return ContainerResources::detect((root_ / "cg").string(), (root_ / "proc").string()); }
  std::filesystem::path root_;
};

TEST_F(FakeCgroup, CgroupV2QuotaAndMemoryLimit) {
  write("cg/cpu.max", "150000 100000\n");
  write("cg/memory.max", "536870912\n");
  const auto r = detect();
  EXPECT_DOUBLE_EQ(r.cpus, 1.5);
  EXPECT_EQ(r.memory_bytes, 536870912);
  EXPECT_EQ(r.cpu_source, "cgroup2 cpu.max");
  const auto pool = WorkerPoolConfig::sized_for(r);
  EXPECT_EQ(pool.max_threads, 6) << "4 per CPU of quota";
  const auto small = WorkerPoolConfig::sized_for(r, 256 << 20);
  EXPECT_EQ(small.max_threads, 2) << "bounded by memory";
  const auto batch = AdaptiveBatcherConfig::sized_for(r, 1 << 20);
  EXPECT_EQ(batch.max_batch, 32) << "a batch fits in 1/16 of 512 MiB at 1 MiB per item";
}

TEST_F(FakeCgroup, NoQuotaFallsBackToTheHost) {
  write("cg/cpu.max", "max 100000\n");
  write("cg/memory.max", "max\n");
  const auto r = detect();
  EXPECT_EQ(r.cpu_source, "host");
  EXPECT_GE(r.cpus, 1);
  EXPECT_EQ(r.memory_bytes, 16384000LL * 1024);
  EXPECT_EQ(r.memory_source, "host");
}

TEST_F(FakeCgroup, CgroupV1Quota) {
  write("cg/cpu/cpu.cfs_quota_us", "200000\n");
  write("cg/cpu/cpu.cfs_period_us", "100000\n");
  write("cg/memory/memory.limit_in_bytes", "1073741824\n");
  const auto r = detect();
  EXPECT_DOUBLE_EQ(r.cpus, 2);
  EXPECT_EQ(r.memory_bytes, 1073741824);
  EXPECT_EQ(r.cpu_source, "cgroup1 cfs quota");
}

}  // namespace
}  // namespace agentline::resilience
