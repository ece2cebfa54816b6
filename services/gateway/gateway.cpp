#include "gateway.h"

#include "agentline/config/options.h"
#include "agentline/observability/metric_registration.h"
#include "dashboard.h"
#include "gateway_impl.h"

namespace agentline::gateway {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void GatewayConfig::bind(config::OptionSet& o) {
  o.add("dlq-url", &dlq_url, "dlq-escalator's HTTP address (its --http-port) for GET /api/dlq and replays");
  o.add("service-urls", &service_urls,
        "The services GET /api/dashboard reads (/readyz, /metrics): name=http://host:port,... (agentline up sets it)");
  o.add("sse-heartbeat-ms", &heartbeat,
        "Heartbeat comment on idle event streams; a client gone is found by the write that fails, so within "
        "about two heartbeats its stream slot is free");
  o.add("unknown-job-wait-ms", &unknown_job_wait, "How long a stream waits for a job that is not on jobs.progress yet");
  o.add("max-streams", &max_streams, "Open event streams at most");
  o.add("sse-min-interval-ms", &min_event_interval,
        "At most one progress event per stream per interval; the changes in between go out together (0: each "
        "change at once)");
}

void GatewayConfig::check() const {
  if (heartbeat < std::chrono::milliseconds(100)) throw config::ConfigError("--sse-heartbeat-ms must be at least 100");
  if (max_streams < 1) throw config::ConfigError("--max-streams must be at least 1");
  try {
    parse_service_urls(service_urls);
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(e.what());
  }
}

Gateway::Impl::Impl(GatewayConfig c, ProgressView& v, kafka::Producer& p, const events::MessageValidator& val,
                    prometheus::Registry& registry)
    : config(std::move(c)), view(v), producer(p), validator(val) {
  while (!config.dlq_url.empty() && config.dlq_url.back() == '/') config.dlq_url.pop_back();
  requests = &observability::counter(registry, "agentline_gateway_requests_total",
                                     "HTTP requests answered by the gateway, by route and status");
  open_streams =
      &observability::gauge(registry, "agentline_gateway_streams", "Open Server-Sent Events streams").Add({});
  auto& tasks =
      observability::counter(registry, "agentline_gateway_tasks_total", "Tasks received by POST /api/jobs, by outcome");
  submitted_tasks = &tasks.Add({{"outcome", "submitted"}});
  rejected_tasks = &tasks.Add({{"outcome", "rejected"}});
}

void Gateway::Impl::json(HttpExchange& x, int status, const Json& body, const net::HttpHeaders& headers) {
  x.respond_json(status, dump(body), headers);
}

void Gateway::Impl::error(HttpExchange& x, int status, const std::string& message, Json extra) {
  Json body = {{"error", message}};
  if (extra.is_object()) body.update(extra);
  json(x, status, body);
}

Gateway::Gateway(GatewayConfig config, ProgressView& view, kafka::Producer& producer,
                 const events::MessageValidator& validator, prometheus::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(config), view, producer, validator, registry)) {}

Gateway::~Gateway() { stop(); }

void Gateway::add_routes(net::HttpServer& server) { impl_->add_routes(server); }

void Gateway::stop() {
  impl_->stopping.store(true);
  impl_->view.stop();
}

}  // namespace agentline::gateway
