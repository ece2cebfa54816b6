#pragma once
// A sliding-window count (dev-fix-worker's LLM limits: requests per second, minute and hour,
// tokens per minute, day and 30 days). The time comes from an injected Clock.
#include <cstdint>
#include <utility>
#include <vector>

#include "agentline/resilience/clock.h"

namespace agentline::resilience {

// Counts an amount over a sliding window kept as `buckets` slices. It sums the current slice and
// the `buckets` before it, so any interval of one window length lies inside what it sums: a
// limit checked against sum() is never exceeded in any window (it may admit a little less).
// Not thread-safe (the limiters lock around it).
class WindowCounter {
 public:
  WindowCounter(Duration window, int buckets = 60);
  std::int64_t sum(TimePoint now);
  // Adds and returns the slice index, so that a refund can find its slice again.
  std::int64_t add(TimePoint now, std::int64_t amount);
  // Takes `amount` back from slice `slice` if it is still in the window.
  void refund(TimePoint now, std::int64_t slice, std::int64_t amount);
  // How long until sum() + amount <= limit (zero if already so; the full window if never).
  Duration time_until_room(TimePoint now, std::int64_t amount, std::int64_t limit);
  Duration window() const { return window_; }

 private:
  std::int64_t slice_of(TimePoint now) const;
  void roll(std::int64_t slice);
  Duration window_;
  Duration slice_;
  int buckets_;
  std::vector<std::pair<std::int64_t, std::int64_t>> ring_;  // (slice index, amount)
};

}  // namespace agentline::resilience
