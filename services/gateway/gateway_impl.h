#pragma once
// The gateway's insides, shared by its files (not a public header): the request as civetweb
// gives it, and Gateway::Impl, whose parts live by concern:
//   http.cpp          responses, the bearer token, reading bodies, dispatch
//   routes.cpp        the route table (pages, jobs, progress, the DLQ proxy)
//   submission.cpp    POST /api/jobs: tasks or a goal, validated, published all or none
//   event_stream.cpp  GET /api/progress/stream/{id}: Server-Sent Events
//   gateway.cpp       start and stop (civetweb)
#include <civetweb.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "gateway.h"
#include "progress_view.h"

namespace agentline::gateway {

using Json = nlohmann::json;

std::string dump(const Json& j);
const char* reason_phrase(int status);

struct Request {
  mg_connection* conn;
  std::string method;
  std::string path;
  std::string query;

  std::string header(const char* name) const {
    const char* v = mg_get_header(conn, name);
    return v ? v : "";
  }
  std::string param(const char* name) const {
    if (query.empty()) return "";
    char buf[1024];
    const int n = mg_get_var(query.data(), query.size(), name, buf, sizeof buf);
    return n >= 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
};

// "/api/jobs/{id}/progress" -> {"api", "jobs", id, "progress"}; ids are URL-decoded by civetweb.
std::vector<std::string> segments(const std::string& path);
// A job id as schemas/task.json allows it: 1 to 128 of A-Z a-z 0-9 . _ : -
bool valid_job_id(const std::string& id);
std::string random_hex(std::size_t bytes);

struct Gateway::Impl {
  GatewayConfig config;
  ProgressView& view;
  kafka::Producer& producer;
  const events::MessageValidator& validator;
  std::shared_ptr<prometheus::Registry> registry;
  std::shared_ptr<observability::HealthState> health;
  mg_context* ctx = nullptr;
  int bound_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<int> streams{0};
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Gauge* open_streams;
  prometheus::Counter* submitted_tasks;
  prometheus::Counter* rejected_tasks;
  Impl(GatewayConfig c, ProgressView& v, kafka::Producer& p, const events::MessageValidator& val,
       std::shared_ptr<prometheus::Registry> r, std::shared_ptr<observability::HealthState> h);

  int send(const Request& req, const std::string& route, int status, const std::string& content_type,
           const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers = {});
  int json(const Request& req, const std::string& route, int status, const Json& body,
           const std::vector<std::pair<std::string, std::string>>& headers = {});
  int error(const Request& req, const std::string& route, int status, const std::string& message, Json extra = {});
  bool authorized(const Request& req) const;
  std::optional<std::string> read_body(const Request& req);
  int dispatch(mg_connection* conn);
  int route(const Request& req);
  int proxy_dlq(const Request& req, const std::string& route, const std::string& path, const Json& body);
  // POST /api/jobs {"job_id": J, "tasks": [task, ...]}: fills what a task may leave out (id,
  // task_id, type DEV_TASK, created_at, job_id), validates every task against the schema and
  // path policy, and publishes all of them or none. POST /api/jobs {"job_id"?, "goal",
  // "constraints"?, "tenant"?} publishes the goal as one PLAN_TASK (job id goal-<random> if none).
  int submit(const Request& req);
  // GET /api/progress/stream/{id}: "progress" events (id: the job's sequence), "final" once every
  // file reached its end, "error" for a job that never appears; a comment line as heartbeat.
  // The first event of a connection carries the whole job document; every later one only what
  // changed since the event before — the summary and the files that changed, marked
  // "delta": true — so a 10,000-file job costs a client its changes, not its size per event.
  // Last-Event-ID (header or ?last_event_id=) resumes: a client that has seen the job's current
  // sequence gets nothing until it changes; otherwise the first event is the document again.
  int stream(const Request& req, const std::string& job_id);
};

}  // namespace agentline::gateway
