#pragma once
// Registering a metric family on a registry, one call instead of prometheus-cpp's builder:
//   requests_ = &observability::counter(registry, "agentline_x_total", "What it counts, by label");
// Families whose samples are computed at scrape time are metric_families.h's.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace agentline::observability {

prometheus::Family<prometheus::Counter>& counter(prometheus::Registry& registry, const std::string& name,
                                                 const std::string& help);
prometheus::Family<prometheus::Gauge>& gauge(prometheus::Registry& registry, const std::string& name,
                                             const std::string& help);
prometheus::Family<prometheus::Histogram>& histogram(prometheus::Registry& registry, const std::string& name,
                                                     const std::string& help);

}  // namespace agentline::observability
