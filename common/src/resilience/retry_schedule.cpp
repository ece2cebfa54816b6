#include "agentline/resilience/retry_schedule.h"

#include <algorithm>

namespace agentline::resilience {

std::chrono::milliseconds exponential_delay(int attempt, std::chrono::milliseconds base,
                                            std::chrono::milliseconds cap) {
  if (attempt < 1) attempt = 1;
  // Doubling stops at the cap, so large attempt numbers cannot overflow.
  std::chrono::milliseconds delay = base;
  for (int i = 1; i < attempt && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

std::vector<std::chrono::milliseconds> exponential_schedule(int tiers, std::chrono::milliseconds base,
                                                            std::chrono::milliseconds cap) {
  std::vector<std::chrono::milliseconds> out;
  for (int attempt = 1; attempt <= tiers; ++attempt) out.push_back(exponential_delay(attempt, base, cap));
  return out;
}

}  // namespace agentline::resilience
