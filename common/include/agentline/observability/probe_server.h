#pragma once
// A small HTTP/1.1 server for the operational endpoints of one process:
//   GET /metrics  Prometheus text format of the registry
//   GET /healthz  200 while live, else 503
//   GET /readyz   200 while ready, else 503 with the reasons
// One thread, one request per connection: it serves scrapes and probes, nothing else.
#include <memory>
#include <string>
#include <thread>

namespace prometheus {
class Registry;
}

namespace agentline::observability {

class HealthState;

class ProbeServer {
 public:
  // Binds host:port (port 0 picks a free port). Throws std::system_error on bind failure.
  ProbeServer(const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry,
              std::shared_ptr<HealthState> health);
  ~ProbeServer();
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;

  int port() const { return port_; }

 private:
  void serve();
  void handle(int fd);

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<HealthState> health_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace agentline::observability
