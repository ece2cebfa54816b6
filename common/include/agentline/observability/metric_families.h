#pragma once
// Building Prometheus samples at scrape time. Components that keep their own atomic counters
// (breakers, limiters, the cache: nothing on their hot path touches prometheus-cpp) turn them
// into metric families only when /metrics is read.
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace agentline::observability {

// The family called `name` in `families`, appended (with help and type) if absent.
prometheus::MetricFamily& family(std::vector<prometheus::MetricFamily>& families, const std::string& name,
                                 const std::string& help, prometheus::MetricType type);
void add_sample(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels, double value);

// Something whose samples are gathered at scrape time (a prometheus::Collectable without the
// registration machinery). /metrics (observability/operational_routes.h) serializes these beside the registry.
class MetricSource {
 public:
  virtual ~MetricSource() = default;
  virtual std::vector<prometheus::MetricFamily> collect() const = 0;
};

}  // namespace agentline::observability
