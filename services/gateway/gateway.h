#pragma once
// The gateway's job API on the process's HTTP server (net::HttpServer): submissions, the job
// list and documents over the jobs.progress view, Server-Sent Events per job, the DLQ through
// dlq-escalator's admin routes, and the live job page. docs/openapi.yaml documents the API.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
}
namespace agentline::config {
class OptionSet;
}
namespace agentline::events {
class MessageValidator;
}
namespace agentline::kafka {
class Producer;
}
namespace agentline::net {
class HttpServer;
}

namespace agentline::gateway {

class ProgressView;

struct GatewayConfig {
  std::string dlq_url;       // dlq-escalator's HTTP base URL; empty: the DLQ endpoints answer 503
  std::string service_urls;  // --service-urls: name=url,... whose /readyz and /metrics GET /api/dashboard reads
  std::string api_token;     // sent on to dlq-escalator; the server checks it on the API
  std::string tasks_topic;   // full name of tasks.submitted
  std::chrono::milliseconds heartbeat{2000};
  // At most one event per stream per interval: the changes in between go out together.
  std::chrono::milliseconds min_event_interval{200};
  std::chrono::milliseconds unknown_job_wait{30000};  // a stream waits this long for a new job to appear
  int max_streams = 64;
  std::size_t max_body_bytes = 8 << 20;

  // --dlq-url, --sse-heartbeat-ms, --unknown-job-wait-ms, --max-streams, --sse-min-interval-ms.
  void bind(config::OptionSet& options);
  // Throws config::ConfigError for values out of range.
  void check() const;
};

class Gateway {
 public:
  Gateway(GatewayConfig config, ProgressView& view, kafka::Producer& producer,
          const events::MessageValidator& validator, prometheus::Registry& registry);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Puts the API and the page on `server` (before it starts) and sizes it for the streams:
  // a civetweb worker per open stream, writes that may wait an hour, the token also as
  // ?access_token= (EventSource cannot send headers), requests counted by route.
  void add_routes(net::HttpServer& server);
  // Ends open streams (call before the server stops: it waits for its handlers).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::gateway
