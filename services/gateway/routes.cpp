// The gateway's route table. Every /api route but the OpenAPI document needs the token.
#include <future>

#include "agentline/net/http_client.h"
#include "dashboard.h"
#include "gateway_impl.h"

namespace agentline::gateway {

namespace {

void embedded(HttpExchange& x, const char* resource, const char* content_type) {
  x.respond(200, content_type, embedded_file(resource).value_or(""));
}

}  // namespace

void Gateway::Impl::add_routes(net::HttpServer& server) {
  auto& o = server.options();
  o.threads = config.max_streams + 16;
  o.io_timeout = std::chrono::hours(1);
  o.token_in_query = true;
  o.requests = requests;
  using Access = net::HttpRoute::Access;
  auto page = [](HttpExchange& x) { embedded(x, "services/gateway/page/index.html", "text/html; charset=utf-8"); };
  server.add({"GET", "/", "page", page});
  server.add({"GET", "/index.html", "page", page});
  server.add({"GET", "/api/openapi.yaml", "openapi",
              [](HttpExchange& x) { embedded(x, "docs/openapi.yaml", "application/yaml"); }});
  // Routes of one job: its id is checked first.
  auto job_route = [this](void (Impl::*fn)(HttpExchange&, const std::string&)) {
    return [this, fn](HttpExchange& x) {
      const auto& id = x.path_param("id");
      if (!valid_job_id(id)) return error(x, 400, "not a job id: 1 to 128 of A-Z a-z 0-9 . _ : -");
      (this->*fn)(x, id);
    };
  };
  // civetweb's workers run on small fixed stacks (Debian builds it with 100 KiB), and schema
  // validation (std::regex in valijson) recurses per character: a task id of 120 characters
  // overflowed it (found by schemathesis). Submissions run on a thread of normal size.
  server.add({"POST", "/api/jobs", "submit",
              [this](HttpExchange& x) { std::async(std::launch::async, [&] { submit(x); }).get(); }, Access::kToken});
  server.add({"GET", "/api/jobs", "jobs",
              [this](HttpExchange& x) {
                json(x, 200, Json{{"jobs", view.jobs()}});
              },
              Access::kToken});
  server.add({"GET", "/api/jobs/{id}", "job", job_route(&Impl::job), Access::kToken});
  server.add({"GET", "/api/jobs/{id}/progress", "progress", job_route(&Impl::progress), Access::kToken});
  server.add({"GET", "/api/progress/stream/{id}", "stream", job_route(&Impl::stream), Access::kToken});
  server.add({"GET", "/api/dashboard", "dashboard",
              [this](HttpExchange& x) {
                json(x, 200, build_dashboard(parse_service_urls(config.service_urls), std::chrono::seconds(2)));
              },
              Access::kToken});
  server.add({"GET", "/api/dlq", "dlq", [this](HttpExchange& x) { list_dlq(x); }, Access::kToken});
  server.add({"POST", "/api/dlq/replay", "dlq_replay", [this](HttpExchange& x) { replay_dlq(x); }, Access::kToken});
}

void Gateway::Impl::job(HttpExchange& x, const std::string& id) {
  auto job = view.job(id);
  if (!job) return error(x, 404, "no job " + id + " on jobs.progress (yet)");
  x.respond_json(200, job->text(), {{"ETag", job->etag}});
}

void Gateway::Impl::progress(HttpExchange& x, const std::string& id) {
  auto job = view.summary(id);
  if (!job) return error(x, 404, "no job " + id + " on jobs.progress (yet)");
  const std::string inm = x.header("If-None-Match");
  if (!inm.empty() && (inm == job->etag || inm == "*" || inm.find(job->etag) != std::string::npos))
    return x.respond(304, "", "", {{"ETag", job->etag}});
  json(x, 200, job->summary, {{"ETag", job->etag}});
}

void Gateway::Impl::list_dlq(HttpExchange& x) {
  Json filter = Json::object();
  for (const char* key : {"job", "task", "reason", "topic"}) {
    if (auto v = x.param(key); !v.empty()) filter[key] = v;
  }
  if (auto v = x.param("limit"); !v.empty()) {
    int limit = 0;
    try {
      std::size_t used = 0;
      limit = std::stoi(v, &used);
      if (used != v.size()) limit = 0;
    } catch (const std::exception&) {
    }
    if (limit < 1 || limit > 10000) return error(x, 400, "limit must be a number from 1 to 10000");
    filter["limit"] = limit;
  }
  proxy_dlq(x, "/dlq/list", filter);
}

void Gateway::Impl::replay_dlq(HttpExchange& x) {
  auto body = x.read_body(config.max_body_bytes);
  if (!body) return error(x, 413, "the body is too large");
  Json filter = Json::parse(body->empty() ? "{}" : *body, nullptr, false);
  if (filter.is_discarded() || !filter.is_object()) return error(x, 400, "the body must be a JSON object");
  if (!filter.contains("job") && !filter.contains("task") && !filter.contains("reason"))
    return error(x, 400, "name what to replay: job, task or reason");
  proxy_dlq(x, "/dlq/replay", filter);
}

void Gateway::Impl::proxy_dlq(HttpExchange& x, const std::string& path, const Json& body) {
  if (config.dlq_url.empty()) return error(x, 503, "no dlq-escalator configured (--dlq-url)");
  net::HttpRequest call;
  call.url = config.dlq_url + path;
  call.headers = {{"Content-Type", "application/json"}};
  // The same token guards dlq-escalator's admin routes.
  if (!config.api_token.empty()) call.headers.push_back({"Authorization", "Bearer " + config.api_token});
  call.body = dump(body);
  call.timeout = std::chrono::seconds(30);
  const auto r = net::http_call(call);
  if (r.status == 0) return error(x, 502, "dlq-escalator did not answer: " + r.error);
  if (r.status == 400) return x.respond_json(400, r.body);
  if (!r.ok()) return error(x, 502, "dlq-escalator answered " + std::to_string(r.status));
  x.respond_json(200, r.body);
}

}  // namespace agentline::gateway
