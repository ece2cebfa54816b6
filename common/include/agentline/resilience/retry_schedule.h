#pragma once
// Backoff schedules. The retry tiers use exponential delays (base * 2^(attempt-1):
// 2 s, 4 s, 8 s by default); the supervisor of `agentline up` uses the same curve to restart
// crashed children.
#include <chrono>
#include <vector>

namespace agentline::resilience {

// The delay before attempt `attempt` (1-based): base * 2^(attempt-1), at most `cap`.
std::chrono::milliseconds exponential_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds cap);
// `tiers` delays of exponential_delay(1..tiers, base, cap).
std::vector<std::chrono::milliseconds> exponential_schedule(int tiers, std::chrono::milliseconds base,
                                                            std::chrono::milliseconds cap);

}  // namespace agentline::resilience
