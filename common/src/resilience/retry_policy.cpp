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

RetryBudget::RetryBudget(RetryBudgetConfig config, const Clock& clock)
    : config_(config), clock_(clock), calls_(config.window, 10), retries_(config.window, 10) {
  if (!(config.retry_ratio >= 0) || !(config.min_retries_per_second >= 0)) {
    throw std::invalid_argument("retry budget: ratio and floor must not be negative");
  }
}

void RetryBudget::record_call() {
  std::lock_guard lock(mu_);
  calls_.add(clock_.now(), 1);
}

bool RetryBudget::try_spend_retry() {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  const double window_s = std::chrono::duration<double>(config_.window).count();
  const double allowed =
      config_.min_retries_per_second * window_s + config_.retry_ratio * static_cast<double>(calls_.sum(now));
  if (static_cast<double>(retries_.sum(now) + 1) > allowed) {
    ++refused_;
    return false;
  }
  retries_.add(now, 1);
  return true;
}

RetryBudget::Stats RetryBudget::stats() {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  return {calls_.sum(now), retries_.sum(now), refused_};
}

void AdaptiveThrottleConfig::validate() const {
  if (!(min_rate > 0) || !(max_rate >= min_rate))
    throw std::invalid_argument("adaptive throttle: need 0 < min_rate <= max_rate");
  if (!(decrease_factor > 0 && decrease_factor < 1))
    throw std::invalid_argument("adaptive throttle: decrease_factor in (0, 1)");
  if (!(increase_step > 0)) throw std::invalid_argument("adaptive throttle: increase_step must be positive");
}

AdaptiveThrottle::AdaptiveThrottle(AdaptiveThrottleConfig config, const Clock& clock)
    : config_((config.validate(), config)),
      clock_(clock),
      rate_(config.max_rate),
      last_change_(clock.now()),
      bucket_(config.max_rate, std::max(1.0, config.max_rate), clock) {}

void AdaptiveThrottle::grow_locked(TimePoint now) {
  // Growth is time-driven: one step per increase_interval since the last change.
  if (rate_ < config_.max_rate && now - last_change_ >= config_.increase_interval) {
    const auto steps = (now - last_change_) / config_.increase_interval;
    rate_ = std::min(config_.max_rate, rate_ + config_.increase_step * static_cast<double>(steps));
    last_change_ = now;
    bucket_.set_rate(rate_);
  }
}

Admission AdaptiveThrottle::try_acquire() {
  {
    std::lock_guard lock(mu_);
    grow_locked(clock_.now());
  }
  return bucket_.try_acquire(1);
}

void AdaptiveThrottle::on_throttled() {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  if (rate_ < config_.max_rate && now - last_change_ < config_.decrease_cooldown) return;
  if (rate_ <= config_.min_rate) {
    last_change_ = now;  // still throttled at the floor: growth waits a full interval again
    return;
  }
  rate_ = std::max(config_.min_rate, rate_ * config_.decrease_factor);
  last_change_ = now;
  bucket_.set_rate(rate_);
  decreases_.fetch_add(1, std::memory_order_relaxed);
}

void AdaptiveThrottle::on_success() {
  std::lock_guard lock(mu_);
  grow_locked(clock_.now());
}

double AdaptiveThrottle::rate() const {
  std::lock_guard lock(mu_);
  return rate_;
}

}  // namespace agentline::resilience
