#include "agentline/resilience/token_bucket.h"

#include <algorithm>
#include <cmath>

#include "agentline/observability/metric_families.h"

namespace agentline::resilience {
namespace {

Duration seconds_f(double s) { return Duration{static_cast<std::int64_t>(std::ceil(s * 1e9))}; }

}  // namespace

TokenBucket::TokenBucket(double rate_per_second, double burst, const Clock& clock)
    : clock_(clock), rate_(rate_per_second), burst_(burst), tokens_(burst), last_(clock.now()) {
  if (!(rate_per_second > 0) || !(burst >= 1))
    throw std::invalid_argument("token bucket: rate must be > 0 and burst >= 1");
}

void TokenBucket::refill_locked(TimePoint now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
}

Admission TokenBucket::try_acquire(double tokens) {
  std::lock_guard lock(mu_);
  refill_locked(clock_.now());
  if (tokens <= tokens_) {
    tokens_ -= tokens;
    return {true, {}};
  }
  if (tokens > burst_) return {false, Duration::max()};
  return {false, seconds_f((tokens - tokens_) / rate_)};
}

void TokenBucket::set_rate(double rate_per_second) {
  if (!(rate_per_second > 0)) throw std::invalid_argument("token bucket: rate must be > 0");
  std::lock_guard lock(mu_);
  refill_locked(clock_.now());
  rate_ = rate_per_second;
}

double TokenBucket::rate() const {
  std::lock_guard lock(mu_);
  return rate_;
}

double TokenBucket::available() const {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(clock_.now() - last_).count();
  return std::min(burst_, tokens_ + rate_ * std::max(0.0, elapsed));
}

KeyedRateLimiter::KeyedRateLimiter(std::string name, KeyedRateLimiterConfig config, const Clock& clock)
    : name_(std::move(name)), config_(std::move(config)), clock_(clock) {
  if (!(config_.rate_per_second > 0) || !(config_.burst >= 1)) {
    throw std::invalid_argument("rate limiter '" + name_ + "': rate must be > 0 and burst >= 1");
  }
}

Admission KeyedRateLimiter::try_acquire(std::string_view key, double tokens) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= config_.max_keys) evict_idle_locked(now);
    auto o = config_.overrides.find(std::string(key));
    const double rate = o != config_.overrides.end() ? o->second.first : config_.rate_per_second;
    const double burst = o != config_.overrides.end() ? o->second.second : config_.burst;
    it = buckets_.emplace(std::string(key), Bucket{rate, burst, burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.last) {
    b.tokens = std::min(b.burst, b.tokens + b.rate * std::chrono::duration<double>(now - b.last).count());
    b.last = now;
  }
  if (tokens <= b.tokens) {
    b.tokens -= tokens;
    admitted_.fetch_add(1, std::memory_order_relaxed);
    return {true, {}};
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (tokens > b.burst) return {false, Duration::max()};
  return {false, seconds_f((tokens - b.tokens) / b.rate)};
}

void KeyedRateLimiter::evict_idle_locked(TimePoint now) {
  // A bucket that has refilled completely carries no state: dropping it changes nothing.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& b = it->second;
    const double tokens = b.tokens + b.rate * std::chrono::duration<double>(now - b.last).count();
    it = tokens >= b.burst ? buckets_.erase(it) : std::next(it);
  }
}

void KeyedRateLimiter::set_limit(const std::string& key, double rate_per_second, double burst) {
  if (!(rate_per_second > 0) || !(burst >= 1)) throw std::invalid_argument("rate must be > 0 and burst >= 1");
  std::lock_guard lock(mu_);
  config_.overrides[key] = {rate_per_second, burst};
  auto it = buckets_.find(key);
  if (it != buckets_.end()) {
    it->second.rate = rate_per_second;
    it->second.burst = burst;
    it->second.tokens = std::min(it->second.tokens, burst);
  }
}

std::size_t KeyedRateLimiter::keys() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

void KeyedRateLimiter::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  add_sample(family(families, "agentline_ratelimit_admitted_total", "Calls admitted by the limiter",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(admitted()));
  add_sample(family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}, {"reason", "key_rate"}}, static_cast<double>(rejected()));
}

}  // namespace agentline::resilience
