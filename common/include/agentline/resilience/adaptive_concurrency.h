#pragma once
// An adaptive limit on calls in flight to a backend whose capacity is unknown and changes (an
// LLM provider): AIMD, in the style of Netflix's concurrency-limits.
//   - Slow start: until the first overload, each call that succeeds while the limit is in use (at
//     least half of it in flight) adds one, so the limit doubles per round of calls (as TCP does:
//     a cold worker reaches a large provider's capacity in a few rounds, not hundreds).
//   - Additive increase after that: each such call adds 1/limit, about one per round.
//   - Multiplicative decrease on overload: a 429 or a timeout multiplies it by `backoff_ratio`
//     (0.5); a latency above `latency_tolerance` x the baseline multiplies it by
//     `latency_backoff` (0.9). At most one decrease per `cooldown`, so a burst of 429s from the
//     calls already in flight halves it once, not to the floor.
//   - Latency: the caller passes a sample comparable between calls (dev-fix-worker: seconds per
//     100 completion tokens, since an LLM call's duration grows with its output). The baseline
//     follows samples down quickly and up slowly (a long average of the good times); the recent
//     level is a short average. A recent level above tolerance x baseline means queueing at the
//     backend: the limit stops growing and decreases.
// The limit stays within [min_limit, max_limit]. Thread-safe; time from the injected Clock.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agentline/resilience/clock.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::resilience {

struct AdaptiveConcurrencyConfig {
  int min_limit = 1;
  int max_limit = 16;
  int initial_limit = 4;  // clamped to [min_limit, max_limit]
  double backoff_ratio = 0.5;
  double latency_backoff = 0.9;
  double latency_tolerance = 2.0;
  Duration cooldown = std::chrono::seconds(1);

  void validate() const;  // throws std::invalid_argument
};

class AdaptiveConcurrency {
 public:
  AdaptiveConcurrency(std::string name, AdaptiveConcurrencyConfig config, const Clock& clock = SystemClock::instance());

  int limit() const;
  // A call succeeded: `latency_sample` as described above, `in_flight` the calls running when it
  // started (itself included).
  void on_success(double latency_sample, int in_flight);
  // The backend said it is overloaded (429, a timeout).
  void on_overload();

  struct Stats {
    int limit = 0;
    double baseline = 0;  // the latency baseline (0 before the first sample)
    double recent = 0;
    std::int64_t increases = 0;
    std::int64_t decreases = 0;  // both kinds
    std::int64_t latency_decreases = 0;
  };
  Stats stats() const;
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  bool decrease_locked(double ratio);  // false within the cooldown
  const std::string name_;
  const AdaptiveConcurrencyConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  double limit_;
  double baseline_ = 0;
  double recent_ = 0;
  TimePoint last_decrease_{};
  bool decreased_ = false;  // since construction: slow start is over
  std::int64_t increases_ = 0;
  std::int64_t decreases_ = 0;
  std::int64_t latency_decreases_ = 0;
};

}  // namespace agentline::resilience
