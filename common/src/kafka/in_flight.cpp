#include "in_flight.h"

#include <algorithm>

namespace agentline::kafka::detail {

InFlight::InFlight(int max_in_flight)
    : max_running_(std::max(1, max_in_flight)),
      limit_(max_running_),
      max_awaiting_(std::max(1, max_in_flight) * kAwaitingPerSlot) {}

bool InFlight::has_room() const {
  return running_ < limit_ && awaiting_ < max_awaiting_ && awaiting_bytes_ < kAwaitingBytes;
}

void InFlight::set_limit(int limit) { limit_ = std::clamp(limit, 1, max_running_); }

void InFlight::handler_returned(std::size_t input_bytes) {
  --running_;
  ++awaiting_;
  awaiting_bytes_ += input_bytes;
}

void InFlight::acknowledged(std::size_t input_bytes) {
  --awaiting_;
  awaiting_bytes_ -= input_bytes;
}

}  // namespace agentline::kafka::detail
