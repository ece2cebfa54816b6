// gateway: job API (submit, list, details, ETag polling), Server-Sent Events per job, the DLQ
// through dlq-escalator, the live job page, /metrics, /healthz and /readyz -- one HTTP port.
// It reads the compacted jobs.progress topic as a table (every partition, no consumer group),
// so replicas need no coordination. The consumer options of the common set do not apply.
#include <malloc.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include <atomic>
#include <iostream>
#include <thread>

#include "agentline/config/options.h"
#include "agentline/events/message_validator.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/observability/health.h"
#include "agentline/service/service_host.h"
#include "agentline/service/stop_signal.h"
#include "gateway.h"
#include "progress_view.h"

namespace {
void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("gateway", "Job API with Server-Sent Events, the DLQ, and the live job page.",
                            {"jobs.progress"});
  gateway::GatewayConfig config;
  int heartbeat_ms = 2000, unknown_job_wait_ms = 30000, min_event_interval_ms = 200;
  auto& o = host.options();
  o.add("dlq-url", &config.dlq_url, "dlq-escalator's HTTP address (its --http-port) for GET /api/dlq and replays");
  o.add("sse-heartbeat-ms", &heartbeat_ms,
        "Heartbeat comment on idle event streams; a client gone is found by the write that fails, so within "
        "about two heartbeats its stream slot is free");
  o.add("unknown-job-wait-ms", &unknown_job_wait_ms,
        "How long a stream waits for a job that is not on jobs.progress yet");
  o.add("max-streams", &config.max_streams, "Open event streams at most");
  o.add("sse-min-interval-ms", &min_event_interval_ms,
        "At most one progress event per stream per interval; the changes in between go out together (0: each "
        "change at once)");
  if (auto exit_code = host.configure(argc, argv, [&] {
        config.api_token = host.common().api_token;
        // Closed by default: without a token the API is for this machine only (docs/security.md).
        if (config.api_token.empty() && !config::is_loopback_host(host.common().http_host) &&
            !host.common().insecure_no_auth) {
          throw config::ConfigError("the gateway would serve its API on " + host.common().http_host +
                                    " without a token: set --api-token-file (or AGENTLINE_API_TOKEN), bind a loopback "
                                    "address, or pass --insecure-no-auth");
        }
        if (heartbeat_ms < 100) throw config::ConfigError("--sse-heartbeat-ms must be at least 100");
        if (config.max_streams < 1) throw config::ConfigError("--max-streams must be at least 1");
        if (min_event_interval_ms < 0) throw config::ConfigError("--sse-min-interval-ms must be 0 or more");
      }))
    return *exit_code;
  while (!config.dlq_url.empty() && config.dlq_url.back() == '/') config.dlq_url.pop_back();
  config.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  config.min_event_interval = std::chrono::milliseconds(min_event_interval_ms);
  config.unknown_job_wait = std::chrono::milliseconds(unknown_job_wait_ms);
  config.host = host.common().http_host;
  config.port = host.common().http_port;
  config.tasks_topic = host.catalog().topic("tasks.submitted");

  service::install_stop_signals();
  try {
    auto health = host.health();
    health->set_condition("jobs_progress", false, "reading jobs.progress");
    const auto settings = host.kafka_settings();
    gateway::ProgressView view;
    kafka::Producer producer(settings, "gateway");
    events::MessageValidator validator;
    gateway::Gateway server(config, view, producer, validator, host.registry(), health);
    server.start();
    spdlog::info("gateway on http://{}:{}/ (API under /api, token {})", config.host, server.port(),
                 !config.api_token.empty()               ? "required"
                 : config::is_loopback_host(config.host) ? "off: this machine only"
                                                         : "off (--insecure-no-auth)");
    const std::string topic = host.catalog().topic("jobs.progress");
    kafka::TopicFollower follower(settings, topic, "agentline-gateway");
    // The gateway's own lag: from the router writing a record (its Kafka timestamp) to the view
    // having it; records read while catching up at start are left out.
    auto& delay = prometheus::BuildHistogram()
                      .Name("agentline_gateway_progress_delay_seconds")
                      .Help("From the router writing a jobs.progress record to the gateway applying it")
                      .Register(*host.registry())
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
    std::atomic<bool> following{false};
    auto apply = [&](const kafka::InboundRecord& r) {
      view.apply(r);
      if (following.load() && r.timestamp_ms > 0)
        delay.Observe(std::max(0.0, static_cast<double>(events::now_ms() - r.timestamp_ms) / 1000.0));
    };
    while (!service::stop_requested()) {
      health->beat();
      try {
        const auto n = follower.catch_up(apply, std::chrono::seconds(10));
        spdlog::info("read {} records of {}: {} jobs", n, topic, view.size());
        break;
      } catch (const std::exception& e) {
        spdlog::warn("cannot read {} yet: {}", topic, e.what());
      }
    }
    following = true;
    follower.follow(apply);
    health->set_condition("jobs_progress", true);
    std::size_t jobs_held = view.size();
    while (!service::stop_requested()) {
      health->beat();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      // Jobs dropped (the router's --job-retention): their memory goes back to the system, so
      // the gateway's size follows the jobs it holds, not the ones it has seen.
      const std::size_t held = view.size();
      if (held < jobs_held) release_free_memory();
      jobs_held = held;
    }
    spdlog::info("stopping");
    server.stop();
    follower.stop();
    producer.flush(std::chrono::seconds(5));
    spdlog::info("exiting with 0");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("fatal: {}", e.what());
    return 1;
  }
}
