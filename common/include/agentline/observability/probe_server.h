#pragma once
// A small HTTP/1.1 server for the operational endpoints of one process:
//   GET /metrics  Prometheus text format of the registry
//   GET /healthz  200 while live, else 503
//   GET /readyz   200 while ready, else 503 with the reasons
// One thread, one request per connection: it serves scrapes and probes, nothing else.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace prometheus {
class Registry;
struct MetricFamily;
}  // namespace prometheus

namespace agentline::observability {

class HealthState;

// A service's own endpoint: takes the request body, returns (status, JSON body).
using AdminRoute = std::function<std::pair<int, std::string>(const std::string& body)>;
// Adds samples gathered at scrape time (breakers, limiters, caches).
using MetricCollector = std::function<void(std::vector<prometheus::MetricFamily>&)>;

struct ProbeExtensions {
  std::map<std::string, AdminRoute> routes;  // key: "GET /stats", "POST /cache/invalidate"
  std::vector<MetricCollector> collectors;
};

class ProbeServer {
 public:
  // Binds host:port (port 0 picks a free port). Throws std::system_error on bind failure.
  ProbeServer(const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry,
              std::shared_ptr<HealthState> health, ProbeExtensions extensions = {});
  ~ProbeServer();
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;

  int port() const { return port_; }

 private:
  void serve();
  void handle(int fd);

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<HealthState> health_;
  ProbeExtensions extensions_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace agentline::observability
