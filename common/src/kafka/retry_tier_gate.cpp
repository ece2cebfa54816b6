#include "kafka/retry_tier_gate.h"

#include <algorithm>

namespace agentline::kafka::detail {

std::int64_t RetryTierGate::lead_for(std::int64_t fetch_wait_ms) {
  return std::max<std::int64_t>(250, fetch_wait_ms + 150);
}

RetryTierGate::Decision RetryTierGate::decide(std::int64_t due_ms, std::int64_t now_ms, bool behind_held) const {
  if (due_ms <= now_ms && !behind_held) return Decision::kRun;
  return due_ms - now_ms <= lead_ms_ ? Decision::kHold : Decision::kPause;
}

}  // namespace agentline::kafka::detail
