#pragma once
// Waits for a condition another thread brings about, with a deadline, so a bug fails the test
// instead of hanging it.
#include <chrono>
#include <thread>

namespace agentline::testing {

template <typename Condition>
bool eventually(Condition done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace agentline::testing
