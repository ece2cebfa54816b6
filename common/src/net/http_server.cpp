#include "agentline/net/http_server.h"

#include <civetweb.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "agentline/config/options.h"

namespace agentline::net {

namespace {

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

std::string json_error(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Opens and closes a connection to the server: civetweb's accept loop polls for 2 s between
// looks at its stop flag, and a connection wakes it.
void poke(const std::string& host, int port) {
  const std::string target = host == "0.0.0.0" || host.empty() ? "127.0.0.1" : host == "::" ? "::1" : host;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(target.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return;
  const int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    [[maybe_unused]] int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    ::close(fd);
  }
  ::freeaddrinfo(res);
}

int log_message(const mg_connection*, const char* message) {
  spdlog::debug("http server: {}", message);
  return 1;
}

}  // namespace

std::vector<std::string> path_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

HttpExchange::HttpExchange(mg_connection* conn, std::string method, std::string path, std::string query)
    : conn_(conn), method_(std::move(method)), path_(std::move(path)), query_(std::move(query)) {}

std::string HttpExchange::header(const char* name) const {
  const char* v = mg_get_header(conn_, name);
  return v ? v : "";
}

std::string HttpExchange::param(const char* name) const {
  if (query_.empty()) return "";
  char buf[1024];
  const int n = mg_get_var(query_.data(), query_.size(), name, buf, sizeof buf);
  return n >= 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

const std::string& HttpExchange::path_param(const std::string& name) const {
  static const std::string none;
  auto it = path_params_.find(name);
  return it == path_params_.end() ? none : it->second;
}

std::optional<std::string> HttpExchange::read_body(std::size_t max_bytes) {
  std::string body;
  char buf[8192];
  for (;;) {
    const int n = mg_read(conn_, buf, sizeof buf);
    if (n <= 0) break;
    body.append(buf, static_cast<std::size_t>(n));
    if (body.size() > max_bytes) return std::nullopt;
  }
  return body;
}

bool HttpExchange::begin(int status, std::string_view content_type, const HttpHeaders& headers) {
  status_ = status;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (!content_type.empty()) head.append("Content-Type: ").append(content_type).append("\r\n");
  head += "Cache-Control: no-cache\r\n";
  for (const auto& [k, v] : headers) head.append(k).append(": ").append(v).append("\r\n");
  head += "\r\n";
  return write(head);
}

void HttpExchange::respond(int status, std::string_view content_type, std::string_view body,
                           const HttpHeaders& headers) {
  HttpHeaders all = headers;
  if (status != 304) all.emplace_back("Content-Length", std::to_string(body.size()));
  if (!begin(status, status == 304 ? std::string_view{} : content_type, all)) return;
  if (status != 304 && method_ != "HEAD") write(body);
}

bool HttpExchange::write(std::string_view piece) {
  return piece.empty() || mg_write(conn_, piece.data(), piece.size()) > 0;
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::add(HttpRoute route) {
  patterns_.push_back(path_segments(route.path));
  routes_.push_back(std::move(route));
}

void HttpServer::start() {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  const bool v6 = options_.host.find(':') != std::string::npos;
  const std::string ports = (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(options_.port);
  const std::string threads = std::to_string(
      std::max<std::size_t>(static_cast<std::size_t>(std::max(options_.threads, 1)), options_.admin_queue + 4));
  const std::string timeout = std::to_string(options_.io_timeout.count());
  const char* mg_options[] = {"listening_ports",    ports.c_str(),       "num_threads",
                              threads.c_str(),      "enable_keep_alive", options_.keep_alive ? "yes" : "no",
                              "request_timeout_ms", timeout.c_str(),     nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = log_message;
  ctx_ = mg_start(&callbacks, nullptr, mg_options);
  if (ctx_ == nullptr) throw std::runtime_error("cannot listen on " + ports);
  mg_set_request_handler(ctx_, "/", on_request, this);
  mg_server_port bound[4];
  const int n = mg_get_server_ports(ctx_, 4, bound);
  port_ = n > 0 ? bound[0].port : options_.port;
  {
    std::lock_guard lock(admin_mu_);
    admin_stop_ = false;
  }
  const bool has_admin =
      std::any_of(routes_.begin(), routes_.end(), [](const HttpRoute& r) { return r.runs == HttpRoute::Runs::kAdmin; });
  if (has_admin) admin_thread_ = std::thread([this] { admin_loop(); });
}

void HttpServer::stop() {
  if (ctx_ == nullptr) return;
  {
    // civetweb stops writing once mg_stop() begins: admin calls are answered first (the one
    // running finishes, the waiting ones get 503) and new ones are refused.
    std::unique_lock lock(admin_mu_);
    admin_stop_ = true;
    admin_cv_.notify_all();
    admin_cv_.wait(lock, [&] { return admin_calls_ == 0; });
  }
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load()) {
      poke(options_.host, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  mg_stop(ctx_);
  stopped = true;
  waker.join();
  ctx_ = nullptr;
  if (admin_thread_.joinable()) admin_thread_.join();
}

int HttpServer::on_request(mg_connection* conn, void* self) { return static_cast<HttpServer*>(self)->dispatch(conn); }

int HttpServer::dispatch(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpExchange exchange(conn, info->request_method ? info->request_method : "", info->local_uri ? info->local_uri : "/",
                        info->query_string ? info->query_string : "");
  const auto segments = path_segments(exchange.path());
  const HttpRoute* found = nullptr;
  std::string allowed;
  for (std::size_t i = 0; i < routes_.size() && found == nullptr; ++i) {
    const auto& pattern = patterns_[i];
    if (pattern.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (std::size_t s = 0; s < pattern.size() && match; ++s) {
      if (pattern[s].size() > 2 && pattern[s].front() == '{' && pattern[s].back() == '}')
        params[pattern[s].substr(1, pattern[s].size() - 2)] = segments[s];
      else
        match = pattern[s] == segments[s];
    }
    if (!match) continue;
    const auto& method = routes_[i].method;
    if (method == exchange.method() || (method == "GET" && exchange.method() == "HEAD")) {
      found = &routes_[i];
      exchange.path_params_ = std::move(params);
    } else if (allowed.find(method) == std::string::npos) {
      allowed += allowed.empty() ? method : ", " + method;
    }
  }
  std::string name = "unknown";
  if (found != nullptr) {
    name = found->name;
    run(*found, exchange);
  } else if (!allowed.empty()) {
    name = "method";
    exchange.respond_json(405, json_error("use " + allowed), {{"Allow", allowed}});
  } else {
    exchange.respond_json(404, json_error("no such resource: " + exchange.path()));
  }
  if (exchange.status() == 0) exchange.respond_json(500, json_error("internal error: the handler did not answer"));
  if (options_.requests != nullptr)
    options_.requests->Add({{"route", name}, {"code", std::to_string(exchange.status())}}).Increment();
  return exchange.status();
}

bool HttpServer::authorized(const HttpExchange& exchange) const {
  if (options_.token.empty()) return options_.open_without_token;
  const std::string auth = exchange.header("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) {
    std::string token = auth.substr(7);
    while (!token.empty() && token.back() == ' ') token.pop_back();
    if (config::same_secret(token, options_.token)) return true;
  }
  return options_.token_in_query && config::same_secret(exchange.param("access_token"), options_.token);
}

void HttpServer::run(const HttpRoute& route, HttpExchange& exchange) {
  if (route.access == HttpRoute::Access::kToken && !authorized(exchange)) {
    exchange.respond_json(
        401,
        json_error(options_.token.empty() ? "this route needs --api-token-file on an address that is not loopback"
                                          : "a bearer token is required (Authorization: Bearer <token>)"),
        {{"WWW-Authenticate", "Bearer realm=\"agentline\""}});
    return;
  }
  if (route.runs == HttpRoute::Runs::kAdmin) return run_admin(route, exchange);
  try {
    route.handler(exchange);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", exchange.method(), exchange.path(), e.what());
    if (exchange.status() == 0) exchange.respond_json(500, json_error(std::string("internal error: ") + e.what()));
  }
}

void HttpServer::run_admin(const HttpRoute& route, HttpExchange& exchange) {
  AdminCall call{&route, &exchange};
  std::unique_lock lock(admin_mu_);
  if (admin_stop_ || admin_calls_ >= options_.admin_queue) {
    lock.unlock();
    exchange.respond_json(503, json_error(admin_stop_ ? "stopping" : "admin routes busy, try again"));
    return;
  }
  ++admin_calls_;
  admin_queue_.push_back(&call);
  admin_cv_.notify_all();
  admin_cv_.wait(lock, [&] { return call.done; });
  --admin_calls_;
  admin_cv_.notify_all();
}

std::size_t HttpServer::admin_calls() const {
  std::lock_guard lock(admin_mu_);
  return admin_calls_;
}

void HttpServer::admin_loop() {
  std::unique_lock lock(admin_mu_);
  for (;;) {
    admin_cv_.wait(lock, [&] { return admin_stop_ || !admin_queue_.empty(); });
    if (admin_queue_.empty()) return;  // stopping, nothing waits
    AdminCall* call = admin_queue_.front();
    admin_queue_.pop_front();
    const bool stopping = admin_stop_;
    lock.unlock();
    if (stopping) {
      call->exchange->respond_json(503, json_error("stopping"));
    } else {
      try {
        call->route->handler(*call->exchange);
      } catch (const std::exception& e) {
        spdlog::warn("admin route {}: {}", call->route->path, e.what());
        if (call->exchange->status() == 0) call->exchange->respond_json(500, json_error("internal error"));
      }
    }
    lock.lock();
    call->done = true;
    admin_cv_.notify_all();
  }
}

}  // namespace agentline::net
