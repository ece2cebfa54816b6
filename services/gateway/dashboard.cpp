#include "dashboard.h"

#include <algorithm>
#include <future>
#include <sstream>
#include <stdexcept>

#include "agentline/events/timestamps.h"
#include "agentline/net/http_client.h"

namespace agentline::gateway {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The samples of a Prometheus text exposition (comments skipped, timestamps ignored).
std::vector<Sample> parse_samples(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) continue;
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') break;
        std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      i = line.find(' ', i);
      if (i == std::string::npos) continue;
    }
    try {
      s.value = std::stod(line.substr(i + 1));
    } catch (const std::exception&) {
      continue;  // NaN, +Inf and the like parse; anything else is not a sample
    }
    out.push_back(std::move(s));
  }
  return out;
}

class Samples {
 public:
  void add(const std::string& service, std::vector<Sample> samples) {
    for (auto& s : samples) all_.push_back({service, std::move(s)});
  }
  // The sum of `name`'s samples whose labels include `match`.
  double sum(const std::string& name, const std::map<std::string, std::string>& match = {}) const {
    double total = 0;
    for (const auto& [service, s] : all_)
      if (s.name == name && matches(s, match)) total += s.value;
    return total;
  }
  double max(const std::string& name, double none = 0) const {
    double best = none;
    bool any = false;
    for (const auto& [service, s] : all_) {
      if (s.name != name) continue;
      best = any ? std::max(best, s.value) : s.value;
      any = true;
    }
    return best;
  }
  // Sums of `name` by the value of `label`.
  std::map<std::string, double> by(const std::string& name, const std::string& label) const {
    std::map<std::string, double> out;
    for (const auto& [service, s] : all_) {
      if (s.name != name) continue;
      auto it = s.labels.find(label);
      if (it != s.labels.end()) out[it->second] += s.value;
    }
    return out;
  }
  template <typename F>
  void each(const std::string& name, F f) const {
    for (const auto& [service, s] : all_)
      if (s.name == name) f(service, s);
  }

 private:
  static bool matches(const Sample& s, const std::map<std::string, std::string>& match) {
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) return false;
    }
    return true;
  }
  std::vector<std::pair<std::string, Sample>> all_;
};

}  // namespace

std::vector<ServiceEndpoint> parse_service_urls(const std::string& text) {
  std::vector<ServiceEndpoint> out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || item.compare(eq + 1, 4, "http") != 0)
      throw std::invalid_argument("--service-urls: '" + item + "' is not name=http://host:port");
    std::string url = item.substr(eq + 1);
    while (!url.empty() && url.back() == '/') url.pop_back();
    out.push_back({item.substr(0, eq), url});
  }
  return out;
}

nlohmann::json summarize_dashboard(const std::map<std::string, ServiceScrape>& scrapes, double now_s) {
  Samples m;
  nlohmann::json health = {{"services", nlohmann::json::object()}};
  nlohmann::json alerts = nlohmann::json::array();
  int ready = 0;
  for (const auto& [name, scrape] : scrapes) {
    const bool is_ready = scrape.ready_status == 200;
    ready += is_ready ? 1 : 0;
    health["services"][name] = {{"ready", is_ready}, {"status", scrape.ready_status}};
    if (!is_ready) {
      alerts.push_back(
          {{"alert", "ServiceNotReady"},
           {"severity", "critical"},
           {"service", name},
           {"detail", scrape.ready_status == 0 ? "no answer on /readyz"
                                               : "/readyz answered " + std::to_string(scrape.ready_status)}});
    }
    m.add(name, parse_samples(scrape.metrics));
  }
  health["ready"] = ready;
  health["total"] = static_cast<int>(scrapes.size());

  m.each("agentline_breaker_state", [&](const std::string& service, const Sample& s) {
    if (s.value == 1 && s.labels.count("state") && s.labels.at("state") == "open")
      alerts.push_back({{"alert", "CircuitBreakerOpen"},
                        {"severity", "warning"},
                        {"service", service},
                        {"detail", "breaker " + (s.labels.count("breaker") ? s.labels.at("breaker") : std::string())}});
  });
  m.each("agentline_consumer_held", [&](const std::string& service, const Sample& s) {
    if (s.value == 1)
      alerts.push_back({{"alert", "ConsumptionHeld"},
                        {"severity", "warning"},
                        {"service", service},
                        {"detail", "a backend asked to back off (breaker open, rate limit)"}});
  });
  if (const double dlq = m.sum("agentline_dlq_stored_records"); dlq > 0)
    alerts.push_back({{"alert", "DeadLetters"},
                      {"severity", "info"},
                      {"service", "dlq-escalator"},
                      {"detail", std::to_string(static_cast<long long>(dlq)) + " record(s) in the DLQ store"}});

  const double hits = m.sum("agentline_cache_requests_total", {{"result", "hit"}});
  const double misses = m.sum("agentline_cache_requests_total", {{"result", "miss"}});
  const nlohmann::json cache = {{"hits", hits},
                                {"misses", misses},
                                {"hit_rate", hits + misses > 0 ? hits / (hits + misses) : 0.0},
                                {"entries", m.sum("agentline_cache_entries")}};

  const nlohmann::json rate_limiting = {{"concurrency_limit", m.max("agentline_concurrency_limit")},
                                        {"calls_in_flight", m.sum("agentline_ratelimit_in_flight")},
                                        {"rejections", m.by("agentline_ratelimit_rejections_total", "reason")},
                                        {"tenant_waits", m.sum("agentline_tenant_throttled_total")},
                                        {"consumption_held", m.max("agentline_consumer_held") == 1}};

  const auto outcomes = m.by("agentline_tasks_generated_total", "outcome");
  double generations = 0;
  for (const auto& [outcome, n] : outcomes) generations += n;
  const double succeeded = (outcomes.count("completed") ? outcomes.at("completed") : 0) +
                           (outcomes.count("cached") ? outcomes.at("cached") : 0);
  const double calls = m.sum("agentline_llm_call_seconds_count");
  // Throughput since the generating service started (the oldest start among its replicas).
  double started = 0;
  m.each("process_start_time_seconds", [&](const std::string& service, const Sample& s) {
    if (service.find("dev-fix-worker") != std::string::npos && (started == 0 || s.value < started)) started = s.value;
  });
  const double hours = started > 0 ? (now_s - started) / 3600.0 : 0;
  const nlohmann::json performance = {
      {"generations", generations},
      {"by_outcome", outcomes},
      {"success_rate", generations > 0 ? succeeded / generations : 0.0},
      {"llm_calls", calls},
      {"average_call_seconds", calls > 0 ? m.sum("agentline_llm_call_seconds_sum") / calls : 0.0},
      {"prompt_tokens", m.sum("agentline_llm_tokens_total", {{"kind", "prompt"}})},
      {"completion_tokens", m.sum("agentline_llm_tokens_total", {{"kind", "completion"}})},
      {"cost_usd", m.sum("agentline_llm_cost_usd_total")},
      {"throughput_per_hour", hours > 0 ? generations / hours : 0.0}};

  return {{"generated_at", events::iso8601(static_cast<std::int64_t>(now_s * 1000))},
          {"health", health},
          {"alerts", alerts},
          {"cache", cache},
          {"rate_limiting", rate_limiting},
          {"performance", performance}};
}

nlohmann::json build_dashboard(const std::vector<ServiceEndpoint>& services, std::chrono::milliseconds timeout) {
  std::vector<std::future<ServiceScrape>> pending;
  for (const auto& s : services) {
    pending.push_back(std::async(std::launch::async, [&s, timeout] {
      ServiceScrape scrape;
      net::HttpRequest ready;
      ready.method = "GET";
      ready.url = s.url + "/readyz";
      ready.timeout = timeout;
      scrape.ready_status = static_cast<int>(net::http_call(ready).status);
      net::HttpRequest metrics;
      metrics.method = "GET";
      metrics.url = s.url + "/metrics";
      metrics.timeout = timeout;
      const auto r = net::http_call(metrics);
      if (r.status == 200) scrape.metrics = r.body;
      return scrape;
    }));
  }
  std::map<std::string, ServiceScrape> scrapes;
  for (std::size_t i = 0; i < services.size(); ++i) scrapes[services[i].name] = pending[i].get();
  return summarize_dashboard(scrapes, static_cast<double>(events::now_ms()) / 1000.0);
}

}  // namespace agentline::gateway
