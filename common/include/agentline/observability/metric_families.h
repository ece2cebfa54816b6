#pragma once
// Building Prometheus samples at scrape time. Components that keep their own atomic counters
// (breakers, limiters, the cache: nothing on their hot path touches prometheus-cpp) turn them
// into metric families only when /metrics is read. Each exports them one way:
//   void append_metrics(std::vector<prometheus::MetricFamily>& families) const;
// and a service hands that to ServiceHost::add_metrics, which /metrics calls at scrape time.
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace agentline::observability {

// The family called `name` in `families`, appended (with help and type) if absent.
prometheus::MetricFamily& family(std::vector<prometheus::MetricFamily>& families, const std::string& name,
                                 const std::string& help, prometheus::MetricType type);
void add_sample(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels, double value);

}  // namespace agentline::observability
