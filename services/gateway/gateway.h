#pragma once
// The gateway's HTTP service (civetweb): the job API over the jobs.progress view, Server-Sent
// Events per job, the DLQ through dlq-escalator's HTTP endpoints, the live job page, and the
// operational endpoints. docs/openapi.yaml documents the API.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace agentline::events {
class MessageValidator;
}
namespace agentline::kafka {
class Producer;
}
namespace agentline::observability {
class HealthState;
}

namespace agentline::gateway {

class ProgressView;

struct GatewayConfig {
  std::string host = "0.0.0.0";
  int port = 9406;
  std::string api_token;    // empty: no authentication
  std::string dlq_url;      // dlq-escalator's HTTP base URL; empty: the DLQ endpoints answer 503
  std::string tasks_topic;  // full name of tasks.submitted
  std::chrono::milliseconds heartbeat{2000};
  // At most one event per stream per interval: the changes in between go out together.
  std::chrono::milliseconds min_event_interval{200};
  std::chrono::milliseconds unknown_job_wait{30000};  // a stream waits this long for a new job to appear
  int max_streams = 64;
  std::size_t max_body_bytes = 8 << 20;
};

class Gateway {
 public:
  Gateway(GatewayConfig config, ProgressView& view, kafka::Producer& producer,
          const events::MessageValidator& validator, std::shared_ptr<prometheus::Registry> registry,
          std::shared_ptr<observability::HealthState> health);
  ~Gateway();  // stop()
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and serves on civetweb's threads. Throws std::runtime_error when it cannot bind.
  void start();
  // Ends open streams and stops the server.
  void stop();
  int port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::gateway
