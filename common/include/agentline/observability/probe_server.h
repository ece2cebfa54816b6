#pragma once
// A small HTTP/1.1 server for the operational endpoints of one process:
//   GET /metrics  Prometheus text format of the registry
//   GET /healthz  200 while live, else 503
//   GET /readyz   200 while ready, else 503 with the reasons
// and the service's admin routes (ProbeExtensions). One thread, one request per connection
// serves scrapes and probes; admin routes run on a thread of their own, one at a time, so a
// long one (a DLQ replay) never stops /healthz, /readyz or /metrics from answering.
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
  // Admin routes answer a request carrying `Authorization: Bearer <admin_token>`. Without a
  // token they answer only when `admin_open` (the port is loopback, or --insecure-no-auth),
  // else 401. Probes and /metrics never need the token.
  std::string admin_token;
  bool admin_open = true;
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
  // Serves one connection; false when an admin route took it over (it closes the socket).
  bool handle(int fd);
  void serve_admin();

  struct AdminCall {
    int fd;
    const AdminRoute* route;
    std::string body;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<HealthState> health_;
  ProbeExtensions extensions_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  static constexpr std::size_t kMaxQueuedAdminCalls = 8;
  std::mutex admin_mu_;
  std::condition_variable admin_cv_;
  std::deque<AdminCall> admin_queue_;
  bool admin_stop_ = false;
  std::thread admin_thread_;
};

}  // namespace agentline::observability
