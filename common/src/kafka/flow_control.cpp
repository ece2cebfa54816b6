#include "kafka/flow_control.h"

#include <algorithm>
#include <limits>

namespace agentline::kafka::detail {

FlowControl::FlowControl(std::size_t backlog_bound, std::size_t byte_bound)
    : high_(std::max<std::size_t>(1, backlog_bound)),
      held_high_(std::max<std::size_t>(4096, high_ * 4)),
      bytes_high_(std::max<std::size_t>(1, byte_bound)) {}

void FlowControl::observe(const std::vector<std::size_t>& waiting_by_rank, std::size_t held, bool holding,
                          const std::vector<std::size_t>& bytes_by_rank) {
  at_or_above_.resize(waiting_by_rank.size());
  bytes_at_or_above_.assign(waiting_by_rank.size(), 0);
  std::size_t sum = 0;
  std::size_t bytes = 0;
  for (std::size_t r = 0; r < waiting_by_rank.size(); ++r) {
    at_or_above_[r] = (sum += waiting_by_rank[r]);
    if (r < bytes_by_rank.size()) bytes += bytes_by_rank[r];
    bytes_at_or_above_[r] = bytes;
  }
  held_ = held;
  holding_ = holding;
}

bool FlowControl::should_pause(bool paused, std::size_t rank, bool retry_tier) const {
  if (at_or_above_.empty()) return holding_ || paused;
  rank = std::min(rank, at_or_above_.size() - 1);
  const bool higher_waiting = rank > 0 && at_or_above_[rank - 1] > 0;
  const std::size_t mine = at_or_above_[rank];
  const std::size_t mine_bytes = bytes_at_or_above_[rank];
  if (holding_ || higher_waiting || mine >= high_ || mine_bytes >= bytes_high_ || (retry_tier && held_ >= held_high_))
    return true;
  if (mine <= high_ / 2 && mine_bytes <= bytes_high_ / 2 && (!retry_tier || held_ <= held_high_ / 2)) return false;
  return paused;
}

int poll_wait_ms(std::int64_t next_start, std::int64_t next_resume, std::int64_t hold_until, std::int64_t now) {
  const std::int64_t next = std::min(next_resume, hold_until > now ? hold_until : next_start);
  if (next == std::numeric_limits<std::int64_t>::max()) return 100;
  return static_cast<int>(std::clamp<std::int64_t>(next - now, 0, 100));
}

}  // namespace agentline::kafka::detail
