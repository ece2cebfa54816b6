#pragma once
// The one HTTP server of every Agentline process (civetweb): a route table of exact paths and
// `{name}` segments, a bearer token per route, request counting, and admin routes that run on
// a thread of their own. ServiceHost puts the probes and /metrics on it
// (observability/operational_routes.h); a service adds its admin routes; the gateway adds its
// API. civetweb's workers answer everything else, so a long admin call (a DLQ replay) never
// keeps /healthz, /readyz or /metrics waiting.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

struct mg_connection;
struct mg_context;

namespace prometheus {
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace agentline::net {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// One request and its answer, as a handler sees them. A handler answers once with respond(),
// or streams: begin() then write() pieces until it returns.
class HttpExchange {
 public:
  HttpExchange(mg_connection* conn, std::string method, std::string path, std::string query);

  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }  // URL-decoded, without the query
  std::string header(const char* name) const;        // "" when absent
  std::string param(const char* name) const;         // a query parameter, URL-decoded; "" when absent
  // A `{name}` segment of the route's path.
  const std::string& path_param(const std::string& name) const;
  // The request body; nullopt when it is longer than max_bytes.
  std::optional<std::string> read_body(std::size_t max_bytes);

  // The whole answer. A HEAD request gets the head only; a 304 has no body headers.
  void respond(int status, std::string_view content_type, std::string_view body, const HttpHeaders& headers = {});
  void respond_json(int status, std::string_view json, const HttpHeaders& headers = {}) {
    respond(status, "application/json", json, headers);
  }
  // A streamed answer (Server-Sent Events): the head now, the body by write(); the connection
  // closes when the handler returns. False once the client is gone.
  bool begin(int status, std::string_view content_type, const HttpHeaders& headers = {});
  bool write(std::string_view piece);

  int status() const { return status_; }  // 0 until answered

 private:
  friend class HttpServer;
  mg_connection* conn_;
  std::string method_, path_, query_;
  std::map<std::string, std::string> path_params_;
  int status_ = 0;
};

using HttpHandler = std::function<void(HttpExchange&)>;

struct HttpRoute {
  enum class Access {
    kOpen,   // probes, /metrics, the page
    kToken,  // the bearer token (HttpServerOptions::token), or open as the options say
  };
  enum class Runs {
    kWorker,  // on the civetweb worker that read the request
    kAdmin,   // on the server's admin thread, one call at a time (queue full: 503)
  };
  std::string method;  // GET also answers HEAD
  std::string path;    // "/api/jobs/{id}/progress"
  std::string name;    // the `route` label of the request counter
  HttpHandler handler;
  Access access = Access::kOpen;
  Runs runs = Runs::kWorker;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port
  // civetweb's workers; at least admin_queue + 4, so probes always find one.
  int threads = 16;
  std::chrono::milliseconds io_timeout{60000};  // a read or write that waits longer fails
  bool keep_alive = true;
  std::size_t admin_queue = 8;  // admin calls waiting or running at most
  // The bearer token of kToken routes. Empty: they are open when `open_without_token`, else 401.
  std::string token;
  bool open_without_token = true;
  // EventSource cannot send headers: accept the token as ?access_token= too.
  bool token_in_query = false;
  // Counts answered requests by route name and status code, when given.
  prometheus::Family<prometheus::Counter>* requests = nullptr;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before start(). The first route whose path matches wins; a path that matches with another
  // method answers 405 with Allow; no match answers 404. Both in JSON, like a handler's errors.
  void add(HttpRoute route);
  // Binds and serves. Throws std::runtime_error when it cannot listen.
  void start();
  // Lets the running admin call finish and answers the waiting ones 503, then stops civetweb
  // (a handler still writing then fails its writes: end streams before) and joins.
  void stop();
  bool running() const { return ctx_ != nullptr; }
  int port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }
  HttpServerOptions& options() { return options_; }  // changes take effect at start()
  std::size_t admin_calls() const;                   // waiting or running

 private:
  static int on_request(mg_connection* conn, void* self);
  int dispatch(mg_connection* conn);
  void run(const HttpRoute& route, HttpExchange& exchange);
  bool authorized(const HttpExchange& exchange) const;
  void run_admin(const HttpRoute& route, HttpExchange& exchange);
  void admin_loop();

  struct AdminCall {
    const HttpRoute* route;
    HttpExchange* exchange;
    bool done = false;
  };

  HttpServerOptions options_;
  std::vector<HttpRoute> routes_;
  std::vector<std::vector<std::string>> patterns_;  // routes_[i]'s path in segments
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  mutable std::mutex admin_mu_;
  std::condition_variable admin_cv_;
  std::deque<AdminCall*> admin_queue_;
  std::size_t admin_calls_ = 0;  // waiting or running
  bool admin_stop_ = false;
  std::thread admin_thread_;
};

// "/a/b/c" -> {"a", "b", "c"}
std::vector<std::string> path_segments(std::string_view path);

}  // namespace agentline::net
