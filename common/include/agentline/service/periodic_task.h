#pragma once
// A service's background loop, written one way: `tick` runs on a thread of its own at once and
// then every `interval`, or sooner after wake(), until stop(). `tick` returns true when more
// work waits (it runs again at once) and false to wait the interval. An exception from a tick
// is logged with the task's name and the loop carries on.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace agentline::service {

class PeriodicTask {
 public:
  PeriodicTask(std::string name, std::chrono::milliseconds interval, std::function<bool()> tick);
  ~PeriodicTask();  // stop()
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // The next tick runs now rather than at the end of the interval.
  void wake();
  // Waits for a running tick to end; no tick starts after it returns.
  void stop();

 private:
  void loop();

  std::string name_;
  std::chrono::milliseconds interval_;
  std::function<bool()> tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace agentline::service
