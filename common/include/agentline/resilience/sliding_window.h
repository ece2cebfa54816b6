#pragma once
// Limits per window (per minute and per hour), never over-admitting. Answers at once; thread-safe;
// the time comes from an injected Clock.
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agentline/resilience/clock.h"
#include "agentline/resilience/token_bucket.h"

namespace prometheus {
struct MetricFamily;
}

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

struct WindowLimit {
  std::string name;  // "minute", "hour": the label of its rejections
  Duration window;
  std::int64_t limit;
};

class SlidingWindowLimiter {
 public:
  // Typical: {{"minute", 1min, 60}, {"hour", 1h, 1000}}. Throws std::invalid_argument on a
  // non-positive window or limit.
  SlidingWindowLimiter(std::string name, std::vector<WindowLimit> limits, const Clock& clock = SystemClock::instance());
  // Admitted only if every window has room for `amount`; then counted in all of them.
  Admission try_acquire(std::int64_t amount = 1);
  std::vector<std::pair<std::string, std::int64_t>> usage();  // (window name, current sum)
  std::int64_t rejected(const std::string& window) const;
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  const std::string name_;
  const Clock& clock_;
  std::vector<WindowLimit> limits_;
  mutable std::mutex mu_;
  std::vector<WindowCounter> counters_;
  std::vector<std::int64_t> rejected_;
  std::int64_t admitted_ = 0;
};

}  // namespace agentline::resilience
