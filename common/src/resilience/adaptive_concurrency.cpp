#include "agentline/resilience/adaptive_concurrency.h"

#include <algorithm>
#include <stdexcept>

#include "agentline/observability/metric_families.h"

namespace agentline::resilience {
namespace {
constexpr double kRecentWeight = 0.3;  // the short average: the last few calls
constexpr double kBaselineUp = 0.01;   // the baseline rises over about a hundred calls...
constexpr double kBaselineDown = 0.2;  // ...and falls over a few
}  // namespace

void AdaptiveConcurrencyConfig::validate() const {
  if (min_limit < 1) throw std::invalid_argument("the minimum concurrency must be at least 1");
  if (max_limit < min_limit) throw std::invalid_argument("the maximum concurrency must be at least the minimum");
  if (!(backoff_ratio > 0 && backoff_ratio < 1) || !(latency_backoff > 0 && latency_backoff < 1))
    throw std::invalid_argument("backoff ratios must be between 0 and 1");
  if (!(latency_tolerance > 1)) throw std::invalid_argument("the latency tolerance must be above 1");
}

AdaptiveConcurrency::AdaptiveConcurrency(std::string name, AdaptiveConcurrencyConfig config, const Clock& clock)
    : name_(std::move(name)), config_(config), clock_(clock) {
  config_.validate();
  limit_ = std::clamp(config_.initial_limit, config_.min_limit, config_.max_limit);
}

int AdaptiveConcurrency::limit() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(limit_);
}

void AdaptiveConcurrency::on_success(double latency_sample, int in_flight) {
  std::lock_guard lock(mu_);
  if (latency_sample > 0) {
    if (baseline_ == 0) {
      baseline_ = recent_ = latency_sample;
    } else {
      recent_ += kRecentWeight * (latency_sample - recent_);
      baseline_ += (latency_sample < baseline_ ? kBaselineDown : kBaselineUp) * (latency_sample - baseline_);
    }
    if (recent_ > config_.latency_tolerance * baseline_) {
      if (decrease_locked(config_.latency_backoff)) ++latency_decreases_;
      return;
    }
  }
  // Grow only a limit that is in use: idle capacity says nothing about what the backend takes.
  if (in_flight * 2 < static_cast<int>(limit_)) return;
  const double before = limit_;
  limit_ = std::min<double>(config_.max_limit, limit_ + (decreased_ ? 1.0 / limit_ : 1.0));
  if (static_cast<int>(limit_) > static_cast<int>(before)) ++increases_;
}

void AdaptiveConcurrency::on_overload() {
  std::lock_guard lock(mu_);
  decrease_locked(config_.backoff_ratio);
}

bool AdaptiveConcurrency::decrease_locked(double ratio) {
  const TimePoint now = clock_.now();
  if (decreased_ && now - last_decrease_ < config_.cooldown) return false;
  if (limit_ <= config_.min_limit) return false;
  decreased_ = true;
  last_decrease_ = now;
  limit_ = std::max<double>(config_.min_limit, limit_ * ratio);
  ++decreases_;
  return true;
}

AdaptiveConcurrency::Stats AdaptiveConcurrency::stats() const {
  std::lock_guard lock(mu_);
  return {static_cast<int>(limit_), baseline_, recent_, increases_, decreases_, latency_decreases_};
}

void AdaptiveConcurrency::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  const Stats s = stats();
  add_sample(family(families, "agentline_concurrency_limit", "The adaptive limit on calls in flight",
                    prometheus::MetricType::Gauge),
             {{"limiter", name_}}, s.limit);
  auto& changes =
      family(families, "agentline_concurrency_limit_changes_total",
             "Changes of the adaptive concurrency limit, by direction and cause", prometheus::MetricType::Counter);
  add_sample(changes, {{"limiter", name_}, {"direction", "up"}, {"cause", "success"}},
             static_cast<double>(s.increases));
  add_sample(changes, {{"limiter", name_}, {"direction", "down"}, {"cause", "overload"}},
             static_cast<double>(s.decreases - s.latency_decreases));
  add_sample(changes, {{"limiter", name_}, {"direction", "down"}, {"cause", "latency"}},
             static_cast<double>(s.latency_decreases));
  add_sample(family(families, "agentline_concurrency_latency_baseline", "The latency baseline of the adaptive limit",
                    prometheus::MetricType::Gauge),
             {{"limiter", name_}}, s.baseline);
}

}  // namespace agentline::resilience
