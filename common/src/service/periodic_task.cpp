#include "agentline/service/periodic_task.h"

#include <spdlog/spdlog.h>

namespace agentline::service {

PeriodicTask::PeriodicTask(std::string name, std::chrono::milliseconds interval, std::function<bool()> tick)
    : name_(std::move(name)), interval_(interval), tick_(std::move(tick)), thread_([this] { loop(); }) {}

PeriodicTask::~PeriodicTask() { stop(); }

void PeriodicTask::wake() {
  std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

void PeriodicTask::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::loop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      woken_ = false;
    }
    bool more = false;
    try {
      more = tick_();
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", name_, e.what());
    }
    std::unique_lock lock(mu_);
    if (!more) cv_.wait_for(lock, interval_, [this] { return stop_ || woken_; });
  }
}

}  // namespace agentline::service
