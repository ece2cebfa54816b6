#pragma once
// A thread pool that grows with its queue and shrinks when idle.
//
// submit() starts a new thread (up to max_threads) when at least scale_up_queue_depth queued
// tasks have no idle (or just started) thread to take them; tick() retires threads idle for idle_timeout (by the
// injected clock) down to min_threads. Limits and thresholds can be changed while it runs.
// stop() runs what is queued, then joins every thread. Thread-safe; tasks must not throw (a
// throwing task is counted as failed and the worker carries on).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "agentline/config/container_resources.h"
#include "agentline/resilience/clock.h"

namespace agentline::resilience {

struct WorkerPoolConfig {
  int min_threads = 1;
  int max_threads = 8;
  int scale_up_queue_depth = 1;
  Duration idle_timeout = std::chrono::seconds(30);
  std::size_t max_queue = 10000;  // submit() refuses beyond this

  void validate() const;  // throws std::invalid_argument
  // For I/O-bound work (LLM and HTTP calls): 4 threads per CPU of quota, at least 2, and no more
  // than the memory allows at `bytes_per_thread` each.
  static WorkerPoolConfig sized_for(const config::ContainerResources& resources,
                                    std::int64_t bytes_per_thread = 64 << 20);
};

class WorkerPool {
 public:
  WorkerPool(std::string name, WorkerPoolConfig config, const Clock& clock = SystemClock::instance());
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False if the queue is full or the pool is stopping.
  bool submit(std::function<void()> task);
  // Retires idle threads and joins finished ones; call it periodically (the service's timer).
  void tick();
  void stop();

  void set_limits(int min_threads, int max_threads);
  void set_scale_up_queue_depth(int depth);
  void set_idle_timeout(Duration timeout);

  struct Stats {
    int threads = 0;
    int idle = 0;
    int peak_threads = 0;
    std::size_t queued = 0;
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::int64_t rejected = 0;
    std::int64_t scale_ups = 0;
    std::int64_t scale_downs = 0;
  };
  Stats stats() const;

 private:
  struct Worker {
    std::thread thread;
    bool idle = false;
    bool done = false;
    TimePoint idle_since{};
  };
  void spawn_locked();
  void run(Worker* self);
  void join_finished(std::unique_lock<std::mutex>& lock);

  const std::string name_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  WorkerPoolConfig config_;
  std::deque<std::function<void()>> queue_;
  std::list<Worker> workers_;
  int threads_ = 0;
  int idle_ = 0;      // waiting threads, including those notified but not yet awake
  int starting_ = 0;  // spawned threads that have not taken the lock yet
  int retire_ = 0;
  bool stopping_ = false;
  Stats stats_;
};

}  // namespace agentline::resilience
