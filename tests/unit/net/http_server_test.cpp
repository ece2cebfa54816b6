// The one HTTP server (net::HttpServer), driven over loopback by the one HTTP client.
#include "agentline/net/http_server.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "agentline/net/http_client.h"
#include "eventually.h"

namespace agentline::net {
namespace {

using Access = HttpRoute::Access;
using Runs = HttpRoute::Runs;

HttpResponse call(const HttpServer& server, const std::string& method, const std::string& target,
                  HttpHeaders headers = {}, std::string body = "") {
  HttpRequest r;
  r.method = method;
  r.url = "http://127.0.0.1:" + std::to_string(server.port()) + target;
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.timeout = std::chrono::seconds(20);
  return http_call(r);
}

// A latch the test opens: an admin route waits on it, so the test decides when it ends.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;
  void wait() {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_entered(int n) {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return entered >= n; }));
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(HttpServer, RoutesByPathWithNamedSegmentsAndAnswers404And405InJson) {
  prometheus::Registry registry;
  HttpServerOptions options;
  options.requests = &prometheus::BuildCounter().Name("requests_total").Help("h").Register(registry);
  HttpServer server(options);
  server.add({"GET", "/api/jobs/{id}/progress", "progress",
              [](HttpExchange& x) { x.respond_json(200, R"({"job":")" + x.path_param("id") + "\"}"); }});
  server.add({"POST", "/api/jobs", "submit", [](HttpExchange& x) {
                auto body = x.read_body(16);
                if (!body) return x.respond_json(413, R"({"error":"too large"})");
                x.respond(202, "text/plain", "got " + *body + " q=" + x.param("q"));
              }});
  server.start();
  auto r = call(server, "GET", "/api/jobs/job%2D7/progress");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"job":"job-7"})") << "segments are URL-decoded";
  EXPECT_EQ(r.header("cache-control").value_or(""), "no-cache");
  r = call(server, "POST", "/api/jobs?q=a%20b", {}, "hello");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "got hello q=a b");
  EXPECT_EQ(call(server, "POST", "/api/jobs", {}, std::string(17, 'x')).status, 413);
  r = call(server, "DELETE", "/api/jobs");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow").value_or(""), "POST");
  EXPECT_EQ(r.body, R"({"error":"use POST"})");
  r = call(server, "GET", "/api/jobs/a/b/c");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"no such resource: /api/jobs/a/b/c"})");
  r = call(server, "HEAD", "/api/jobs/j/progress");
  EXPECT_EQ(r.status, 200) << "GET routes answer HEAD";
  EXPECT_TRUE(r.body.empty());
  server.stop();
  auto& family = *options.requests;
  EXPECT_EQ(family.Add({{"route", "progress"}, {"code", "200"}}).Value(), 2);
  EXPECT_EQ(family.Add({{"route", "submit"}, {"code", "413"}}).Value(), 1);
  EXPECT_EQ(family.Add({{"route", "method"}, {"code", "405"}}).Value(), 1);
  EXPECT_EQ(family.Add({{"route", "unknown"}, {"code", "404"}}).Value(), 1);
}

TEST(HttpServer, TokenRoutesNeedTheBearerTokenAndTheQueryTokenOnlyWhenAllowed) {
  HttpServerOptions options;
  options.token = "s3cret";
  HttpServer server(options);
  server.add({"GET", "/admin", "admin", [](HttpExchange& x) { x.respond(200, "text/plain", "in"); }, Access::kToken});
  server.add({"GET", "/open", "open", [](HttpExchange& x) { x.respond(200, "text/plain", "open"); }});
  server.start();
  auto r = call(server, "GET", "/admin");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.header("www-authenticate").value_or("").find("Bearer"), std::string::npos);
  EXPECT_EQ(call(server, "GET", "/admin", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(call(server, "GET", "/admin", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(call(server, "GET", "/admin?access_token=s3cret").status, 401) << "not unless token_in_query";
  EXPECT_EQ(call(server, "GET", "/open").status, 200);
  server.stop();
  server.options().token_in_query = true;
  server.start();
  EXPECT_EQ(call(server, "GET", "/admin?access_token=s3cret").status, 200);
  EXPECT_EQ(call(server, "GET", "/admin?access_token=nope").status, 401);

  HttpServerOptions closed;
  closed.open_without_token = false;  // no token, an address that is not loopback
  HttpServer closed_server(closed);
  closed_server.add(
      {"GET", "/admin", "admin", [](HttpExchange& x) { x.respond(200, "text/plain", "in"); }, Access::kToken});
  closed_server.start();
  r = call(closed_server, "GET", "/admin");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("--api-token-file"), std::string::npos) << r.body;
}

TEST(HttpServer, AdminCallsRunOneAtATimeOnTheirOwnThreadWhileProbesAnswer) {
  HttpServerOptions options;
  options.admin_queue = 2;
  HttpServer server(options);
  Gate gate;
  std::atomic<int> running{0}, most{0};
  std::mutex ids_mu;
  std::set<std::thread::id> admin_threads;
  server.add({"POST", "/replay", "replay",
              [&](HttpExchange& x) {
                {
                  std::lock_guard lock(ids_mu);
                  admin_threads.insert(std::this_thread::get_id());
                }
                most = std::max(most.load(), ++running);
                gate.wait();
                --running;
                x.respond_json(200, "{}");
              },
              Access::kOpen, Runs::kAdmin});
  server.add({"GET", "/healthz", "healthz", [](HttpExchange& x) { x.respond(200, "text/plain", "ok\n"); }});
  server.start();
  auto first = std::async(std::launch::async, [&] { return call(server, "POST", "/replay"); });
  gate.wait_entered(1);
  auto second = std::async(std::launch::async, [&] { return call(server, "POST", "/replay"); });
  ASSERT_TRUE(testing::eventually([&] { return server.admin_calls() == 2; }));
  // The queue holds two calls (one running, one waiting): the third is refused, not queued.
  const auto third = call(server, "POST", "/replay");
  EXPECT_EQ(third.status, 503);
  EXPECT_NE(third.body.find("busy"), std::string::npos);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call(server, "GET", "/healthz").status, 200) << "probes answer meanwhile";
  gate.release();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200);
  EXPECT_EQ(most.load(), 1) << "admin calls never overlap";
  EXPECT_EQ(admin_threads.size(), 1u);
  EXPECT_EQ(admin_threads.count(std::this_thread::get_id()), 0u);
}

TEST(HttpServer, StoppingAnswersWaitingAdminCalls503AndAThrowingHandler500) {
  HttpServer server(HttpServerOptions{});
  Gate gate;
  server.add({"POST", "/slow", "slow",
              [&](HttpExchange& x) {
                gate.wait();
                x.respond_json(200, "{}");
              },
              Access::kOpen, Runs::kAdmin});
  server.add({"GET", "/boom", "boom", [](HttpExchange&) -> void { throw std::runtime_error("kaput"); }});
  server.start();
  auto r = call(server, "GET", "/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("kaput"), std::string::npos);
  auto running = std::async(std::launch::async, [&] { return call(server, "POST", "/slow"); });
  gate.wait_entered(1);
  auto waiting = std::async(std::launch::async, [&] { return call(server, "POST", "/slow"); });
  ASSERT_TRUE(testing::eventually([&] { return server.admin_calls() == 2; }));
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  // stop() waits for the running call: it has not returned before the call ends.
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  gate.release();
  stopped.get();
  auto r1 = running.get(), r2 = waiting.get();
  EXPECT_EQ(r1.status, 200) << "a running admin call finishes " << r1.error;
  EXPECT_EQ(r2.status, 503) << "a waiting one is told the server stops " << r2.error;
  EXPECT_FALSE(server.running());
}

}  // namespace
}  // namespace agentline::net
