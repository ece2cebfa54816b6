#pragma once
// GET /api/dashboard: the whole system in one document (the seeds' /dashboard and /performance),
// aggregated from each service's /readyz and /metrics (--service-urls): health, alerts, cache,
// rate limiting and performance (generations, success rate, average call time, tokens, cost,
// throughput per hour). docs/gateway.md describes the fields.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agentline::gateway {

struct ServiceEndpoint {
  std::string name;
  std::string url;  // http://host:port, its /readyz and /metrics
};

// "router=http://127.0.0.1:9402,qa-worker=http://..." -> endpoints; std::invalid_argument on an
// item without a name and an http(s) URL.
std::vector<ServiceEndpoint> parse_service_urls(const std::string& text);

// What one service answered: /readyz's status (0: no answer) and /metrics' text.
struct ServiceScrape {
  int ready_status = 0;
  std::string metrics;
};

// The dashboard document from the scrapes, `now_s` the Unix time (for throughput per hour).
nlohmann::json summarize_dashboard(const std::map<std::string, ServiceScrape>& scrapes, double now_s);

// Scrapes every endpoint (each call bounded by `timeout`) and summarizes.
nlohmann::json build_dashboard(const std::vector<ServiceEndpoint>& services, std::chrono::milliseconds timeout);

}  // namespace agentline::gateway
