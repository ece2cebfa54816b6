#pragma once
// How long to wait before retrying a failed call, and whether a retry is allowed at all
// (outbox-uploader's uploads): exponential (2^n: 2, 4, 8 s), linear, fixed or
// decorrelated-jitter delays, optional jitter, a maximum delay, and the server's Retry-After
// taking precedence when it gives one. Thread-safe; it never sleeps.
#include <atomic>
#include <cstdint>
#include <optional>

#include "agentline/resilience/clock.h"

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

}  // namespace agentline::resilience
