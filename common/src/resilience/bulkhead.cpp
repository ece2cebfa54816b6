#include "agentline/resilience/bulkhead.h"

#include "agentline/observability/metric_families.h"

namespace agentline::resilience {

Bulkhead::Bulkhead(std::string name, int max_concurrent) : name_(std::move(name)), max_(max_concurrent) {
  if (max_concurrent < 1) throw std::invalid_argument("bulkhead '" + name_ + "': max_concurrent must be at least 1");
}

Bulkhead::Lease Bulkhead::try_acquire() {
  int current = in_flight_.load(std::memory_order_acquire);
  for (;;) {
    if (current >= max_.load(std::memory_order_acquire)) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) return Lease(this);
  }
}

void Bulkhead::Lease::release() {
  if (bulkhead_ != nullptr) std::exchange(bulkhead_, nullptr)->in_flight_.fetch_sub(1, std::memory_order_acq_rel);
}

void Bulkhead::set_max(int max_concurrent) {
  if (max_concurrent < 1) throw std::invalid_argument("bulkhead '" + name_ + "': max_concurrent must be at least 1");
  max_.store(max_concurrent, std::memory_order_release);
}

void Bulkhead::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  add_sample(
      family(families, "agentline_bulkhead_in_flight", "Calls holding a bulkhead lease", prometheus::MetricType::Gauge),
      {{"bulkhead", name_}}, in_flight());
  add_sample(
      family(families, "agentline_bulkhead_max", "The bulkhead's concurrency limit", prometheus::MetricType::Gauge),
      {{"bulkhead", name_}}, max());
  add_sample(family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}, {"reason", "concurrency"}}, static_cast<double>(rejected()));
}

}  // namespace agentline::resilience
