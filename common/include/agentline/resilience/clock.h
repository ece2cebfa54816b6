#pragma once
// Time, injected. Breakers, limiters, retry budgets and cache TTLs read the time only through
// a Clock, so their tests advance a ManualClock instead of sleeping.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace agentline::resilience {

// Wall-clock milliseconds since the epoch, as Kafka timestamps and messages carry them (the
// retry tiers' due times, created_at). For measuring intervals use a Clock: it is steady.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// std::chrono::steady_clock. Thread-safe; one shared instance.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  static const SystemClock& instance();
};

// A clock that moves only when told to. Thread-safe: tests may advance it from one thread while
// others read it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1))
      : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(TimePoint::duration(now_.load(std::memory_order_acquire))); }
  void advance(Duration d) {
    now_.fetch_add(std::chrono::duration_cast<TimePoint::duration>(d).count(), std::memory_order_acq_rel);
  }
  void set(TimePoint t) { now_.store(t.time_since_epoch().count(), std::memory_order_release); }

 private:
  std::atomic<TimePoint::duration::rep> now_;
};

}  // namespace agentline::resilience
