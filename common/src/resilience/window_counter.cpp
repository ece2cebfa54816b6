#include "agentline/resilience/window_counter.h"

#include <algorithm>

namespace agentline::resilience {
namespace {

std::int64_t ns_of(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

WindowCounter::WindowCounter(Duration window, int buckets)
    : window_(window),
      slice_(window / buckets),
      buckets_(buckets),
      ring_(static_cast<std::size_t>(buckets) + 1, {-1, 0}) {
  if (window.count() <= 0 || buckets < 1 || slice_.count() <= 0)
    throw std::invalid_argument("window counter: bad window");
}

std::int64_t WindowCounter::slice_of(TimePoint now) const { return ns_of(now) / slice_.count(); }

void WindowCounter::roll(std::int64_t slice) {
  auto& cell = ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))];
  if (cell.first != slice) cell = {slice, 0};
}

std::int64_t WindowCounter::sum(TimePoint now) {
  const std::int64_t current = slice_of(now);
  std::int64_t total = 0;
  for (const auto& [slice, amount] : ring_) {
    if (slice >= current - buckets_ && slice <= current) total += amount;
  }
  return total;
}

std::int64_t WindowCounter::add(TimePoint now, std::int64_t amount) {
  const std::int64_t slice = slice_of(now);
  roll(slice);
  ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))].second += amount;
  return slice;
}

void WindowCounter::refund(TimePoint now, std::int64_t slice, std::int64_t amount) {
  if (slice < slice_of(now) - buckets_) return;  // already out of the window
  auto& cell = ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))];
  if (cell.first == slice) cell.second = std::max<std::int64_t>(0, cell.second - amount);
}

Duration WindowCounter::time_until_room(TimePoint now, std::int64_t amount, std::int64_t limit) {
  std::int64_t excess = sum(now) + amount - limit;
  if (excess <= 0) return Duration{0};
  if (amount > limit) return window_;
  const std::int64_t current = slice_of(now);
  // Slices before the clock's epoch never held anything (and must not index the ring negatively:
  // a day's window on a clock that started an hour ago, such as steady_clock after a boot).
  for (std::int64_t s = std::max<std::int64_t>(0, current - buckets_); s <= current; ++s) {
    const auto& cell = ring_[static_cast<std::size_t>(s % static_cast<std::int64_t>(ring_.size()))];
    if (cell.first != s) continue;
    excess -= cell.second;
    if (excess <= 0) {
      // Slice s leaves the sum when slice s + buckets + 1 begins.
      return Duration{(s + buckets_ + 1) * slice_.count() - ns_of(now)};
    }
  }
  return window_;
}

}  // namespace agentline::resilience
