#include <spdlog/spdlog.h>

#include <sstream>

#include "agentline/config/options.h"
#include "gateway_impl.h"

namespace agentline::gateway {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Gateway::Impl::Impl(GatewayConfig c, ProgressView& v, kafka::Producer& p, const events::MessageValidator& val,
                    std::shared_ptr<prometheus::Registry> r, std::shared_ptr<observability::HealthState> h)
    : config(std::move(c)), view(v), producer(p), validator(val), registry(std::move(r)), health(std::move(h)) {
  requests = &prometheus::BuildCounter()
                  .Name("agentline_gateway_requests_total")
                  .Help("HTTP requests answered by the gateway, by route and status")
                  .Register(*registry);
  open_streams = &prometheus::BuildGauge()
                      .Name("agentline_gateway_streams")
                      .Help("Open Server-Sent Events streams")
                      .Register(*registry)
                      .Add({});
  auto& tasks = prometheus::BuildCounter()
                    .Name("agentline_gateway_tasks_total")
                    .Help("Tasks received by POST /api/jobs, by outcome")
                    .Register(*registry);
  submitted_tasks = &tasks.Add({{"outcome", "submitted"}});
  rejected_tasks = &tasks.Add({{"outcome", "rejected"}});
}

int Gateway::Impl::send(const Request& req, const std::string& route, int status, const std::string& content_type,
                        const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers) {
  std::ostringstream head;
  head << "HTTP/1.1 " << status << " " << reason_phrase(status) << "\r\n";
  if (status != 304) head << "Content-Type: " << content_type << "\r\nContent-Length: " << body.size() << "\r\n";
  head << "Cache-Control: no-cache\r\n";
  for (const auto& [k, v] : headers) head << k << ": " << v << "\r\n";
  head << "\r\n";
  const std::string h = head.str();
  mg_write(req.conn, h.data(), h.size());
  if (status != 304 && req.method != "HEAD") mg_write(req.conn, body.data(), body.size());
  requests->Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  return status;
}

int Gateway::Impl::json(const Request& req, const std::string& route, int status, const Json& body,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  return send(req, route, status, "application/json", dump(body), headers);
}

int Gateway::Impl::error(const Request& req, const std::string& route, int status, const std::string& message,
                         Json extra) {
  Json body = {{"error", message}};
  if (extra.is_object()) body.update(extra);
  return json(req, route, status, body);
}

bool Gateway::Impl::authorized(const Request& req) const {
  if (config.api_token.empty()) return true;
  const std::string auth = req.header("Authorization");
  if (auth.rfind("Bearer ", 0) == 0 && config::same_secret(auth.substr(7), config.api_token)) return true;
  // EventSource cannot send headers: the stream also takes ?access_token=.
  const std::string token = req.param("access_token");
  return config::same_secret(token, config.api_token);
}

std::optional<std::string> Gateway::Impl::read_body(const Request& req) {
  std::string body;
  char buf[8192];
  for (;;) {
    const int n = mg_read(req.conn, buf, sizeof buf);
    if (n <= 0) break;
    body.append(buf, static_cast<std::size_t>(n));
    if (body.size() > config.max_body_bytes) return std::nullopt;
  }
  return body;
}

int Gateway::Impl::dispatch(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  Request req{conn, info->request_method ? info->request_method : "", info->local_uri ? info->local_uri : "/",
              info->query_string ? info->query_string : ""};
  try {
    return route(req);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", req.method, req.path, e.what());
    return error(req, "error", 500, std::string("internal error: ") + e.what());
  }
}

}  // namespace agentline::gateway
