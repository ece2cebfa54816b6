#include "agentline/observability/probe_server.h"
#include "agentline/observability/process_metrics.h"

#include <cctype>
#include <cstdlib>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <system_error>

#include "agentline/config/options.h"
#include "agentline/observability/health.h"

namespace agentline::observability {

namespace {

void write_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::string json_response(int status, const std::string& body);

std::string response(int status, const char* reason, const std::string& content_type, const std::string& body) {
  std::ostringstream out;
  out << "HTTP/1.1 " << status << ' ' << reason << "\r\n"
      << "Content-Type: " << content_type << "\r\n"
      << "Content-Length: " << body.size() << "\r\n"
      << "Connection: close\r\n\r\n"
      << body;
  return out.str();
}

std::string json_response(int status, const std::string& body) {
  return response(status,
                  status < 300    ? "OK"
                  : status == 401 ? "Unauthorized"
                  : status == 404 ? "Not Found"
                  : status == 503 ? "Service Unavailable"
                                  : "Error",
                  "application/json", body);
}

}  // namespace

ProbeServer::ProbeServer(const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry,
                         std::shared_ptr<HealthState> health, ProbeExtensions extensions)
    : registry_(std::move(registry)), health_(std::move(health)), extensions_(std::move(extensions)) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res); rc != 0) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "probe server: cannot resolve " + host + ": " + gai_strerror(rc));
  }
  listen_fd_ = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen_fd_ < 0 || ::bind(listen_fd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listen_fd_, 64) != 0) {
    int err = errno;
    ::freeaddrinfo(res);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::system_error(err, std::generic_category(), "probe server: cannot listen on " + host + ":" + port_str);
  }
  ::freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(wake_fds_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw std::system_error(errno, std::generic_category(), "probe server: pipe");
  }
  thread_ = std::thread([this] { serve(); });
  if (!extensions_.routes.empty()) admin_thread_ = std::thread([this] { serve_admin(); });
}

ProbeServer::~ProbeServer() {
  char byte = 1;
  [[maybe_unused]] auto n = ::write(wake_fds_[1], &byte, 1);
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(admin_mu_);
    admin_stop_ = true;
  }
  admin_cv_.notify_all();
  if (admin_thread_.joinable()) admin_thread_.join();
  for (const auto& call : admin_queue_) ::close(call.fd);
  ::close(listen_fd_);
  ::close(wake_fds_[0]);
  ::close(wake_fds_[1]);
}

void ProbeServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    bool done = true;
    try {
      done = handle(fd);
    } catch (const std::exception& e) {
      spdlog::warn("probe server: {}", e.what());
    }
    if (done) ::close(fd);
  }
}

void ProbeServer::serve_admin() {
  for (;;) {
    AdminCall call;
    {
      std::unique_lock lock(admin_mu_);
      admin_cv_.wait(lock, [&] { return admin_stop_ || !admin_queue_.empty(); });
      if (admin_stop_) return;
      call = std::move(admin_queue_.front());
      admin_queue_.pop_front();
    }
    try {
      auto [status, body] = (*call.route)(call.body);
      write_all(call.fd, json_response(status, body));
    } catch (const std::exception& e) {
      spdlog::warn("admin route: {}", e.what());
      write_all(call.fd, json_response(500, R"({"error":"internal error"})"));
    }
    ::close(call.fd);
  }
}

bool ProbeServer::handle(int fd) {
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<std::size_t>(n));
  }
  // A small body (admin POSTs): Content-Length bytes after the headers, at most 64 KiB.
  std::string body_in, lower;
  if (auto end = request.find("\r\n\r\n"); end != std::string::npos) {
    std::size_t length = 0;
    lower = request.substr(0, end);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto cl = lower.find("content-length:"); cl != std::string::npos) {
      length = std::min<std::size_t>(std::strtoul(lower.c_str() + cl + 15, nullptr, 10), 65536);
    }
    body_in = request.substr(end + 4);
    while (body_in.size() < length) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      body_in.append(buf, static_cast<std::size_t>(n));
    }
    body_in.resize(std::min(body_in.size(), length));
  }
  auto line_end = request.find("\r\n");
  std::string line = request.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    write_all(fd, response(400, "Bad Request", "text/plain", "bad request\n"));
    return true;
  }
  std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  if (auto route = extensions_.routes.find(method + " " + path); route != extensions_.routes.end()) {
    // The bearer token, read from the original request (tokens are case-sensitive).
    std::string token;
    if (auto at = lower.find("\r\nauthorization: bearer "); at != std::string::npos) {
      const auto start = at + 24;
      token = request.substr(start, request.find("\r\n", start) - start);
      while (!token.empty() && token.back() == ' ') token.pop_back();
    }
    const bool allowed =
        extensions_.admin_token.empty() ? extensions_.admin_open : config::same_secret(token, extensions_.admin_token);
    if (!allowed) {
      write_all(fd, json_response(
                        401, extensions_.admin_token.empty()
                                 ? R"({"error":"admin routes need --api-token-file on a port that is not loopback"})"
                                 : R"({"error":"missing or wrong bearer token"})"));
      return true;
    }
    std::lock_guard lock(admin_mu_);
    if (admin_queue_.size() >= kMaxQueuedAdminCalls) {
      write_all(fd, json_response(503, R"({"error":"admin routes busy, try again"})"));
      return true;
    }
    // Long routes (a replay) may write for longer than a probe's 2 s send timeout.
    timeval timeout{60, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    admin_queue_.push_back({fd, &route->second, std::move(body_in)});
    admin_cv_.notify_one();
    return false;
  } else if (method != "GET" && method != "HEAD") {
    write_all(fd, response(405, "Method Not Allowed", "text/plain", "GET only\n"));
  } else if (path == "/metrics") {
    std::ostringstream body;
    auto families = registry_->Collect();
    for (const auto& collect : extensions_.collectors) collect(families);
    append_process_metrics(families);
    prometheus::TextSerializer().Serialize(body, families);
    write_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.str()));
  } else if (path == "/healthz") {
    bool live = health_->live();
    write_all(fd, live ? response(200, "OK", "text/plain", "ok\n")
                       : response(503, "Service Unavailable", "text/plain", "main loop stalled\n"));
  } else if (path == "/readyz") {
    bool ready = health_->ready();
    write_all(fd, ready ? response(200, "OK", "text/plain", "ready\n")
                        : response(503, "Service Unavailable", "text/plain",
                                   "not ready: " + health_->not_ready_reasons() + "\n"));
  } else {
    write_all(fd, response(404, "Not Found", "text/plain", "not found\n"));
  }
  return true;
}

}  // namespace agentline::observability
