// gateway: job API (submit, list, details, ETag polling), Server-Sent Events per job, the DLQ
// through dlq-escalator, the live job page, /metrics, /healthz and /readyz -- one HTTP port.
// It reads the compacted jobs.progress topic as a table (every partition, no consumer group),
// so replicas need no coordination. The consumer options of the common set do not apply.
#include <spdlog/spdlog.h>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/producer.h"
#include "agentline/service/service_host.h"
#include "gateway.h"
#include "progress_feed.h"
#include "progress_view.h"

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("gateway", "Job API with Server-Sent Events, the DLQ, and the live job page.",
                            {"jobs.progress"});
  gateway::GatewayConfig config;
  config.bind(host.options());
  if (auto exit_code = host.configure(argc, argv, [&] {
        const auto& common = host.common();
        // Closed by default: without a token the API is for this machine only (docs/security.md).
        if (common.api_token.empty() && !config::is_loopback_host(common.http_host) && !common.insecure_no_auth) {
          throw config::ConfigError("the gateway would serve its API on " + common.http_host +
                                    " without a token: set --api-token-file (or AGENTLINE_API_TOKEN), bind a loopback "
                                    "address, or pass --insecure-no-auth");
        }
        config.check();
        config.api_token = common.api_token;
        config.tasks_topic = host.catalog().topic("tasks.submitted");
      }))
    return *exit_code;
  const auto settings = host.kafka_settings();
  gateway::ProgressView view;
  kafka::Producer producer(settings, "gateway");
  events::MessageValidator validator;
  gateway::Gateway api(config, view, producer, validator, *host.registry());
  api.add_routes(host.http());
  return host.serve([&] {
    spdlog::info("gateway API under /api, token {}", !config.api_token.empty() ? "required"
                                                     : config::is_loopback_host(host.common().http_host)
                                                         ? "off: this machine only"
                                                         : "off (--insecure-no-auth)");
    try {
      gateway::feed_progress(settings, host.catalog().topic("jobs.progress"), view, *host.registry(), *host.health());
    } catch (...) {
      api.stop();  // open streams end, so the server can stop
      throw;
    }
    api.stop();
    producer.flush(std::chrono::seconds(5));
    return 0;
  });
}
