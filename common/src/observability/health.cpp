#include "agentline/observability/health.h"

namespace agentline::observability {

namespace {
std::chrono::steady_clock::rep ticks() { return std::chrono::steady_clock::now().time_since_epoch().count(); }
}  // namespace

HealthState::HealthState(std::chrono::milliseconds liveness_window) : window_(liveness_window), last_beat_(ticks()) {}

void HealthState::beat() { last_beat_.store(ticks(), std::memory_order_relaxed); }

void HealthState::set_condition(const std::string& name, bool ok, const std::string& reason) {
  std::lock_guard lock(mutex_);
  conditions_[name] = {ok, reason};
}

bool HealthState::live() const {
  const std::chrono::steady_clock::duration since(ticks() - last_beat_.load(std::memory_order_relaxed));
  return since <= window_;
}

bool HealthState::ready() const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, state] : conditions_) {
    if (!state.first) return false;
  }
  return true;
}

std::string HealthState::not_ready_reasons() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, state] : conditions_) {
    if (state.first) continue;
    if (!out.empty()) out += "; ";
    out += name;
    if (!state.second.empty()) out += ": " + state.second;
  }
  return out;
}

}  // namespace agentline::observability
