#include "agentline/kafka/offset_tracker.h"

#include <stdexcept>

namespace agentline::kafka {

void OffsetTracker::start(std::int64_t offset) {
  if (!pending_.empty() && offset <= pending_.rbegin()->first) {
    throw std::logic_error("OffsetTracker: offsets must be started in increasing order");
  }
  pending_.emplace(offset, false);
}

void OffsetTracker::finish(std::int64_t offset) {
  auto it = pending_.find(offset);
  if (it == pending_.end()) return;
  it->second = true;
  // Advance over the finished prefix; the first unfinished record bounds the commit.
  while (!pending_.empty() && pending_.begin()->second) {
    committable_ = pending_.begin()->first + 1;
    pending_.erase(pending_.begin());
  }
}

std::size_t OffsetTracker::in_flight() const {
  std::size_t n = 0;
  for (const auto& [offset, done] : pending_) n += done ? 0 : 1;
  return n;
}

std::vector<std::int64_t> OffsetTracker::finished_beyond() const {
  std::vector<std::int64_t> out;
  for (const auto& [offset, done] : pending_) {
    if (done) out.push_back(offset);
  }
  return out;
}

std::optional<std::int64_t> OffsetTracker::first_pending() const {
  if (pending_.empty()) return std::nullopt;
  return pending_.begin()->first;
}

}  // namespace agentline::kafka
