#pragma once
// How long to wait before retrying a failed call, whether a retry is allowed at all, and how
// fast to call a backend that answers 429.
//
//   RetryPolicy       exponential (2^n: 2, 4, 8 s), linear, fixed or decorrelated-jitter
//                     delays, optional jitter, a maximum delay, and the server's Retry-After
//                     taking precedence when it gives one
//   RetryBudget       retries may be at most a share of calls (plus a small floor), so retries
//                     cannot multiply an outage
//   AdaptiveThrottle  halves the allowed rate on each 429 (down to a floor) and grows it back in
//                     steps while the backend accepts calls
// All are thread-safe and take time from an injected Clock; none of them sleeps.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

#include "agentline/resilience/clock.h"
#include "agentline/resilience/sliding_window.h"
#include "agentline/resilience/token_bucket.h"

namespace agentline::resilience {

struct RetryPolicyConfig {
  enum class Backoff { kExponential, kLinear, kFixed, kDecorrelatedJitter };
  enum class Jitter { kNone, kFull, kEqual };
  Backoff backoff = Backoff::kExponential;
  Jitter jitter = Jitter::kNone;
  Duration base = std::chrono::seconds(2);
  double multiplier = 2.0;  // exponential only
  Duration max_delay = std::chrono::seconds(60);
  int max_attempts = 4;  // including the first call
  bool honour_retry_after = true;
  Duration max_retry_after = std::chrono::minutes(5);  // a longer Retry-After is capped here

  void validate() const;  // throws std::invalid_argument
};

class RetryPolicy {
 public:
  explicit RetryPolicy(RetryPolicyConfig config = {}, std::uint64_t seed = 0x9e3779b97f4a7c15ULL);

  // Whether another attempt may follow `attempts_made` attempts.
  bool allows(int attempts_made) const { return attempts_made < config_.max_attempts; }
  // The delay before retry `retry` (1 = the first retry). `previous` is the last delay used
  // (decorrelated jitter grows from it); `retry_after` is the server's, if it sent one.
  Duration delay(int retry, Duration previous = Duration{0}, std::optional<Duration> retry_after = std::nullopt) const;
  const RetryPolicyConfig& config() const { return config_; }

 private:
  double uniform() const;  // [0, 1), lock-free
  const RetryPolicyConfig config_;
  mutable std::atomic<std::uint64_t> state_;
};

struct RetryBudgetConfig {
  double retry_ratio = 0.2;           // retries may be this share of calls in the window...
  double min_retries_per_second = 1;  // ...plus this many per second, so low traffic can retry
  Duration window = std::chrono::seconds(10);
};

class RetryBudget {
 public:
  explicit RetryBudget(RetryBudgetConfig config = {}, const Clock& clock = SystemClock::instance());
  void record_call();  // every first attempt
  // True (and counted) if a retry fits the budget now.
  bool try_spend_retry();
  struct Stats {
    std::int64_t calls_in_window = 0;
    std::int64_t retries_in_window = 0;
    std::int64_t retries_refused = 0;
  };
  Stats stats();

 private:
  const RetryBudgetConfig config_;
  const Clock& clock_;
  std::mutex mu_;
  WindowCounter calls_;
  WindowCounter retries_;
  std::int64_t refused_ = 0;
};

struct AdaptiveThrottleConfig {
  double max_rate = 10;   // calls per second when all is well
  double min_rate = 0.5;  // the floor halving stops at
  double decrease_factor = 0.5;
  Duration decrease_cooldown = std::chrono::seconds(1);  // one burst of 429s halves once
  double increase_step = 1;                              // added per increase_interval without a 429
  Duration increase_interval = std::chrono::seconds(10);

  void validate() const;
};

// Drives a token bucket: acquire() admits at the current rate.
class AdaptiveThrottle {
 public:
  explicit AdaptiveThrottle(AdaptiveThrottleConfig config = {}, const Clock& clock = SystemClock::instance());
  Admission try_acquire();
  void on_throttled();  // the backend answered 429
  void on_success();    // the backend accepted a call
  double rate() const;
  std::int64_t decreases() const { return decreases_.load(std::memory_order_relaxed); }

 private:
  void grow_locked(TimePoint now);
  const AdaptiveThrottleConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  double rate_;
  TimePoint last_change_;
  TokenBucket bucket_;
  std::atomic<std::int64_t> decreases_{0};
};

}  // namespace agentline::resilience
