#include "agentline/observability/metric_families.h"

#include <algorithm>

namespace agentline::observability {

prometheus::MetricFamily& family(std::vector<prometheus::MetricFamily>& families, const std::string& name,
                                 const std::string& help, prometheus::MetricType type) {
  auto it = std::find_if(families.begin(), families.end(), [&](const auto& f) { return f.name == name; });
  if (it != families.end()) return *it;
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  families.push_back(std::move(f));
  return families.back();
}

void add_sample(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  switch (family.type) {
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  family.metric.push_back(std::move(metric));
}

}  // namespace agentline::observability
