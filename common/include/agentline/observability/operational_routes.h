#pragma once
// The operational endpoints of every process, on its one HTTP server:
//   GET /metrics  Prometheus text format: the registry, the collectors, the process metrics
//   GET /healthz  200 while live, else 503
//   GET /readyz   200 while ready, else 503 with the reasons
// Never behind the token (kubelet and Prometheus do not send one).
#include <functional>
#include <memory>
#include <vector>

namespace prometheus {
class Registry;
struct MetricFamily;
}  // namespace prometheus

namespace agentline::net {
class HttpServer;
}

namespace agentline::observability {

class HealthState;

// Adds samples gathered at scrape time (breakers, limiters, caches).
using MetricCollector = std::function<void(std::vector<prometheus::MetricFamily>&)>;

void add_operational_routes(net::HttpServer& server, std::shared_ptr<prometheus::Registry> registry,
                            std::shared_ptr<HealthState> health, std::vector<MetricCollector> collectors = {});

}  // namespace agentline::observability
