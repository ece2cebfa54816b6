#pragma once
// The gateway's insides, shared by its files (not a public header). Gateway::Impl's parts live
// by concern:
//   gateway.cpp       options, errors in JSON, the bearer token passed on
//   routes.cpp        the route table (page, jobs, progress, the DLQ proxy)
//   submission.cpp    POST /api/jobs: tasks or a goal, validated, published all or none
//   event_stream.cpp  GET /api/progress/stream/{id}: Server-Sent Events
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/producer.h"
#include "agentline/net/http_server.h"
#include "gateway.h"
#include "progress_view.h"

namespace agentline::gateway {

using Json = nlohmann::json;
using net::HttpExchange;

std::string dump(const Json& j);
// Its embedded files: the page and docs/openapi.yaml (agentline_embed in CMakeLists.txt).
std::optional<std::string_view> embedded_file(std::string_view path);
// A job id as schemas/task.json allows it: 1 to 128 of A-Z a-z 0-9 . _ : -
bool valid_job_id(const std::string& id);
std::string random_hex(std::size_t bytes);

struct Gateway::Impl {
  GatewayConfig config;
  ProgressView& view;
  kafka::Producer& producer;
  const events::MessageValidator& validator;
  std::atomic<bool> stopping{false};
  std::atomic<int> streams{0};
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Gauge* open_streams;
  prometheus::Counter* submitted_tasks;
  prometheus::Counter* rejected_tasks;
  Impl(GatewayConfig c, ProgressView& v, kafka::Producer& p, const events::MessageValidator& val,
       prometheus::Registry& registry);

  void add_routes(net::HttpServer& server);
  void json(HttpExchange& x, int status, const Json& body, const net::HttpHeaders& headers = {});
  void error(HttpExchange& x, int status, const std::string& message, Json extra = {});
  void job(HttpExchange& x, const std::string& id);
  // The summary only, with an ETag (If-None-Match: 304).
  void progress(HttpExchange& x, const std::string& id);
  void list_dlq(HttpExchange& x);
  void replay_dlq(HttpExchange& x);
  void proxy_dlq(HttpExchange& x, const std::string& path, const Json& body);
  // POST /api/jobs {"job_id": J, "tasks": [task, ...]}: fills what a task may leave out (id,
  // task_id, type DEV_TASK, created_at, job_id), validates every task against the schema and
  // path policy, and publishes all of them or none. POST /api/jobs {"job_id"?, "goal",
  // "constraints"?, "tenant"?} publishes the goal as one PLAN_TASK (job id goal-<random> if none).
  void submit(HttpExchange& x);
  // GET /api/progress/stream/{id}: "progress" events (id: the job's sequence), "final" once every
  // file reached its end, "error" for a job that never appears; a comment line as heartbeat.
  // The first event of a connection carries the whole job document; every later one only what
  // changed since the event before — the summary and the files that changed, marked
  // "delta": true — so a 10,000-file job costs a client its changes, not its size per event.
  // Last-Event-ID (header or ?last_event_id=) resumes: a client that has seen the job's current
  // sequence gets nothing until it changes; otherwise the first event is the document again.
  void stream(HttpExchange& x, const std::string& job_id);
};

}  // namespace agentline::gateway
