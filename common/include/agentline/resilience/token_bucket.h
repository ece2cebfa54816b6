#pragma once
// Token buckets. Every limiter answers at once (admitted, or refused with the time after which a
// retry may succeed); none blocks or sleeps. Thread-safe; the time comes from an injected Clock.
//   TokenBucket       one rate with a burst
//   KeyedRateLimiter  a token bucket per key (tenant, user), bounded in keys
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agentline/resilience/clock.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::resilience {

struct Admission {
  bool admitted = false;
  Duration retry_after{0};  // when refused: the earliest time a retry could be admitted
  explicit operator bool() const { return admitted; }
};

class TokenBucket {
 public:
  // `rate_per_second` tokens are added continuously up to `burst`; the bucket starts full.
  TokenBucket(double rate_per_second, double burst, const Clock& clock = SystemClock::instance());
  Admission try_acquire(double tokens = 1);
  void set_rate(double rate_per_second);  // keeps the tokens already earned
  double rate() const;
  double available() const;

 private:
  void refill_locked(TimePoint now);
  const Clock& clock_;
  mutable std::mutex mu_;
  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_;
};

struct KeyedRateLimiterConfig {
  double rate_per_second = 10;
  double burst = 20;
  std::size_t max_keys = 100000;  // idle (full) buckets are dropped beyond this
  // Per-key overrides: key -> (rate_per_second, burst).
  std::map<std::string, std::pair<double, double>> overrides;
};

class KeyedRateLimiter {
 public:
  explicit KeyedRateLimiter(std::string name, KeyedRateLimiterConfig config,
                            const Clock& clock = SystemClock::instance());
  Admission try_acquire(std::string_view key, double tokens = 1);
  void set_limit(const std::string& key, double rate_per_second, double burst);
  std::size_t keys() const;
  std::int64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  std::int64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  struct Bucket {
    double rate;
    double burst;
    double tokens;
    TimePoint last;
  };
  void evict_idle_locked(TimePoint now);
  const std::string name_;
  KeyedRateLimiterConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::atomic<std::int64_t> admitted_{0};
  std::atomic<std::int64_t> rejected_{0};
};

}  // namespace agentline::resilience
