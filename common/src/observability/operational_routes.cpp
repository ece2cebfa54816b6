#include "agentline/observability/operational_routes.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "agentline/net/http_server.h"
#include "agentline/observability/health.h"
#include "agentline/observability/process_metrics.h"

namespace agentline::observability {

void add_operational_routes(net::HttpServer& server, std::shared_ptr<prometheus::Registry> registry,
                            std::shared_ptr<HealthState> health, std::vector<MetricCollector> collectors) {
  server.add({"GET", "/healthz", "healthz", [health](net::HttpExchange& x) {
                const bool live = health->live();
                x.respond(live ? 200 : 503, "text/plain", live ? "ok\n" : "main loop stalled\n");
              }});
  server.add({"GET", "/readyz", "readyz", [health](net::HttpExchange& x) {
                if (health->ready()) return x.respond(200, "text/plain", "ready\n");
                x.respond(503, "text/plain", "not ready: " + health->not_ready_reasons() + "\n");
              }});
  server.add({"GET", "/metrics", "metrics",
              [registry = std::move(registry), collectors = std::move(collectors)](net::HttpExchange& x) {
                auto families = registry->Collect();
                for (const auto& collect : collectors) collect(families);
                append_process_metrics(families);
                std::ostringstream body;
                prometheus::TextSerializer().Serialize(body, families);
                x.respond(200, "text/plain; version=0.0.4; charset=utf-8", body.str());
              }});
}

}  // namespace agentline::observability
