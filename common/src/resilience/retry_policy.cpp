#include "agentline/resilience/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace agentline::resilience {

void RetryPolicyConfig::validate() const {
  auto fail = [](const char* what) { throw std::invalid_argument(std::string("retry policy: ") + what); };
  if (base.count() <= 0) fail("base must be positive");
  if (max_delay < base) fail("max_delay must be at least base");
  if (!(multiplier >= 1.0)) fail("multiplier must be at least 1");
  if (max_attempts < 1) fail("max_attempts must be at least 1");
  if (max_retry_after.count() < 0) fail("max_retry_after must not be negative");
}

RetryPolicy::RetryPolicy(RetryPolicyConfig config, std::uint64_t seed)
    : config_((config.validate(), config)), state_(seed) {}

double RetryPolicy::uniform() const {
  // splitmix64 over an atomic counter: thread-safe without a lock, reproducible from the seed.
  std::uint64_t z = state_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

Duration RetryPolicy::delay(int retry, Duration previous, std::optional<Duration> retry_after) const {
  if (config_.honour_retry_after && retry_after) {
    return std::clamp(*retry_after, Duration{0}, config_.max_retry_after);
  }
  retry = std::max(retry, 1);
  const double base = static_cast<double>(config_.base.count());
  const double cap = static_cast<double>(config_.max_delay.count());
  double d = base;
  switch (config_.backoff) {
    case RetryPolicyConfig::Backoff::kExponential:
      d = base * std::pow(config_.multiplier, std::min(retry - 1, 62));
      break;
    case RetryPolicyConfig::Backoff::kLinear:
      d = base * retry;
      break;
    case RetryPolicyConfig::Backoff::kFixed:
      d = base;
      break;
    case RetryPolicyConfig::Backoff::kDecorrelatedJitter: {
      // AWS's "decorrelated jitter": uniform between base and three times the previous delay.
      const double prev = std::max(base, static_cast<double>(previous.count()));
      d = base + uniform() * (prev * 3 - base);
      return Duration{static_cast<std::int64_t>(std::min(cap, d))};
    }
  }
  d = std::min(cap, d);
  switch (config_.jitter) {
    case RetryPolicyConfig::Jitter::kNone:
      break;
    case RetryPolicyConfig::Jitter::kFull:
      d = uniform() * d;
      break;
    case RetryPolicyConfig::Jitter::kEqual:
      d = d / 2 + uniform() * d / 2;
      break;
  }
  return Duration{static_cast<std::int64_t>(d)};
}

}  // namespace agentline::resilience
