#include "agentline/resilience/sliding_window.h"

#include <algorithm>

#include "agentline/observability/metric_families.h"

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

SlidingWindowLimiter::SlidingWindowLimiter(std::string name, std::vector<WindowLimit> limits, const Clock& clock)
    : name_(std::move(name)), clock_(clock), limits_(std::move(limits)) {
  for (const auto& l : limits_) {
    if (l.window.count() <= 0 || l.limit <= 0) {
      throw std::invalid_argument("rate limiter '" + name_ + "': window '" + l.name +
                                  "' needs a positive length and limit");
    }
    counters_.emplace_back(l.window, 60);
  }
  rejected_.assign(limits_.size(), 0);
}

Admission SlidingWindowLimiter::try_acquire(std::int64_t amount) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    if (counters_[i].sum(now) + amount > limits_[i].limit) {
      ++rejected_[i];
      return {false, counters_[i].time_until_room(now, amount, limits_[i].limit)};
    }
  }
  for (auto& c : counters_) c.add(now, amount);
  ++admitted_;
  return {true, {}};
}

std::vector<std::pair<std::string, std::int64_t>> SlidingWindowLimiter::usage() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::int64_t>> out;
  const TimePoint now = clock_.now();
  for (std::size_t i = 0; i < limits_.size(); ++i) out.emplace_back(limits_[i].name, counters_[i].sum(now));
  return out;
}

std::int64_t SlidingWindowLimiter::rejected(const std::string& window) const {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    if (limits_[i].name == window) return rejected_[i];
  }
  return 0;
}

void SlidingWindowLimiter::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  std::lock_guard lock(mu_);
  add_sample(family(families, "agentline_ratelimit_admitted_total", "Calls admitted by the limiter",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(admitted_));
  auto& rejected = family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                          prometheus::MetricType::Counter);
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    add_sample(rejected, {{"limiter", name_}, {"reason", limits_[i].name}}, static_cast<double>(rejected_[i]));
  }
}

}  // namespace agentline::resilience
