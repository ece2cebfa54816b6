#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <future>

#include "agentline/config/options.h"
#include "agentline/config/resources.h"
#include "agentline/net/http_client.h"
#include "agentline/observability/process_metrics.h"
#include "gateway_impl.h"

namespace agentline::gateway {

int Gateway::Impl::route(const Request& req) {
  const auto seg = segments(req.path);
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (req.path == "/" || req.path == "/index.html") {
    if (!get) return error(req, "page", 405, "use GET");
    auto page = config::embedded_resource("services/gateway/page/index.html");
    return send(req, "page", 200, "text/html; charset=utf-8", std::string(page.value_or("")));
  }
  const bool fixed =
      req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics" || req.path == "/api/openapi.yaml";
  if (fixed && !get) return error(req, "method", 405, "use GET");
  if (req.path == "/healthz") {
    const bool live = health->live();
    return send(req, "healthz", live ? 200 : 503, "text/plain", live ? "ok\n" : "not live\n");
  }
  if (req.path == "/readyz") {
    const bool ready = health->ready();
    return send(req, "readyz", ready ? 200 : 503, "text/plain",
                ready ? "ready\n" : "not ready: " + health->not_ready_reasons() + "\n");
  }
  if (req.path == "/metrics") {
    auto families = registry->Collect();
    observability::append_process_metrics(families);
    std::ostringstream body;
    prometheus::TextSerializer().Serialize(body, families);
    return send(req, "metrics", 200, "text/plain; version=0.0.4", body.str());
  }
  if (req.path == "/api/openapi.yaml") {
    auto spec = config::embedded_resource("docs/openapi.yaml");
    return send(req, "openapi", 200, "application/yaml", std::string(spec.value_or("")));
  }
  if (seg.empty() || seg[0] != "api") return error(req, "unknown", 404, "no such resource: " + req.path);
  if (!authorized(req)) {
    return json(req, "unauthorized", 401, Json{{"error", "a bearer token is required"}},
                {{"WWW-Authenticate", "Bearer realm=\"agentline\""}});
  }
  const bool names_job = (seg.size() >= 3 && seg[1] == "jobs") || (seg.size() == 4 && seg[1] == "progress");
  if (names_job && !valid_job_id(seg.size() == 4 && seg[1] == "progress" ? seg[3] : seg[2])) {
    return error(req, "job_id", 400, "not a job id: 1 to 128 of A-Z a-z 0-9 . _ : -");
  }
  if (seg.size() == 2 && seg[1] == "jobs") {
    // civetweb's workers run on small fixed stacks (Debian builds it with 100 KiB), and
    // schema validation (std::regex in valijson) recurses per character: a task id of 120
    // characters overflowed it (found by schemathesis). Submissions run on a thread of
    // normal size.
    if (req.method == "POST") return std::async(std::launch::async, [&] { return submit(req); }).get();
    if (!get) return error(req, "jobs", 405, "use GET or POST");
    return json(req, "jobs", 200, Json{{"jobs", view.jobs()}});
  }
  if (seg.size() == 3 && seg[1] == "jobs") {
    if (!get) return error(req, "job", 405, "use GET");
    auto job = view.job(seg[2]);
    if (!job) return error(req, "job", 404, "no job " + seg[2] + " on jobs.progress (yet)");
    return send(req, "job", 200, "application/json", job->text(), {{"ETag", job->etag}});
  }
  if (seg.size() == 4 && seg[1] == "jobs" && seg[3] == "progress") {
    if (!get) return error(req, "progress", 405, "use GET");
    auto job = view.summary(seg[2]);
    if (!job) return error(req, "progress", 404, "no job " + seg[2] + " on jobs.progress (yet)");
    const std::string inm = req.header("If-None-Match");
    if (!inm.empty() && (inm == job->etag || inm == "*" || inm.find(job->etag) != std::string::npos)) {
      return send(req, "progress", 304, "", "", {{"ETag", job->etag}});
    }
    return json(req, "progress", 200, job->summary, {{"ETag", job->etag}});
  }
  if (seg.size() == 4 && seg[1] == "progress" && seg[2] == "stream") {
    if (!get) return error(req, "stream", 405, "use GET");
    return stream(req, seg[3]);
  }
  if (seg.size() == 2 && seg[1] == "dlq") {
    if (!get) return error(req, "dlq", 405, "use GET");
    Json filter = Json::object();
    for (const char* key : {"job", "task", "reason", "topic"}) {
      if (auto v = req.param(key); !v.empty()) filter[key] = v;
    }
    if (auto v = req.param("limit"); !v.empty()) {
      int limit = 0;
      try {
        std::size_t used = 0;
        limit = std::stoi(v, &used);
        if (used != v.size()) limit = 0;
      } catch (const std::exception&) {
      }
      if (limit < 1 || limit > 10000) return error(req, "dlq", 400, "limit must be a number from 1 to 10000");
      filter["limit"] = limit;
    }
    return proxy_dlq(req, "dlq", "/dlq/list", filter);
  }
  if (seg.size() == 3 && seg[1] == "dlq" && seg[2] == "replay") {
    if (req.method != "POST") return error(req, "dlq_replay", 405, "use POST");
    auto body = read_body(req);
    if (!body) return error(req, "dlq_replay", 413, "the body is too large");
    Json filter = Json::parse(body->empty() ? "{}" : *body, nullptr, false);
    if (filter.is_discarded() || !filter.is_object())
      return error(req, "dlq_replay", 400, "the body must be a JSON object");
    if (!filter.contains("job") && !filter.contains("task") && !filter.contains("reason")) {
      return error(req, "dlq_replay", 400, "name what to replay: job, task or reason");
    }
    return proxy_dlq(req, "dlq_replay", "/dlq/replay", filter);
  }
  return error(req, "unknown", 404, "no such resource: " + req.path);
}

int Gateway::Impl::proxy_dlq(const Request& req, const std::string& route, const std::string& path, const Json& body) {
  if (config.dlq_url.empty()) return error(req, route, 503, "no dlq-escalator configured (--dlq-url)");
  net::HttpRequest call;
  call.url = config.dlq_url + path;
  call.headers = {{"Content-Type", "application/json"}};
  // The same token guards dlq-escalator's admin routes.
  if (!config.api_token.empty()) call.headers.push_back({"Authorization", "Bearer " + config.api_token});
  call.body = dump(body);
  call.timeout = std::chrono::seconds(30);
  const auto r = net::http_call(call);
  if (r.status == 0) return error(req, route, 502, "dlq-escalator did not answer: " + r.error);
  if (r.status == 400) return send(req, route, 400, "application/json", r.body);
  if (!r.ok()) return error(req, route, 502, "dlq-escalator answered " + std::to_string(r.status));
  return send(req, route, 200, "application/json", r.body);
}

}  // namespace agentline::gateway
