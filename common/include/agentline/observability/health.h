#pragma once
// Liveness and readiness of one process, set by its components. Thread-safe.
//  - live: the owning loop has beaten within the liveness window. A broker outage does not
//    make a process unlive (restarting it would not help).
//  - ready: every named condition is true (e.g. "kafka" connected, "no-data-loss").
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace agentline::observability {

class HealthState {
 public:
  explicit HealthState(std::chrono::milliseconds liveness_window = std::chrono::seconds(30));

  void beat();
  void set_condition(const std::string& name, bool ok, const std::string& reason = {});
  bool live() const;
  bool ready() const;
  // Human-readable summary of failing conditions ("" when ready).
  std::string not_ready_reasons() const;

 private:
  std::chrono::milliseconds window_;
  std::atomic<std::chrono::steady_clock::rep> last_beat_;  // steady_clock ticks
  mutable std::mutex mutex_;
  std::map<std::string, std::pair<bool, std::string>> conditions_;
};

}  // namespace agentline::observability
