#include "gateway.h"

#include <civetweb.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "agentline/config/options.h"
#include "agentline/config/resources.h"
#include "agentline/events/message_validator.h"
#include "agentline/events/plan_task.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/producer.h"
#include "agentline/net/http_client.h"
#include "agentline/observability/health.h"
#include "agentline/observability/process_metrics.h"
#include "progress_view.h"

namespace agentline::gateway {
namespace {

using Json = nlohmann::json;

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

std::string random_hex(std::size_t bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned>(rng() & 0xff);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// A job id as schemas/task.json allows it: 1 to 128 of A-Z a-z 0-9 . _ : -
bool valid_job_id(const std::string& id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
             std::string::npos;
}

// "/api/jobs/{id}/progress" -> {"api", "jobs", id, "progress"}; ids are URL-decoded by civetweb.
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

}  // namespace

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

  // -- responses ------------------------------------------------------------------------------
  int send(const Request& req, const std::string& route, int status, const std::string& content_type,
           const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
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
  int json(const Request& req, const std::string& route, int status, const Json& body,
           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return send(req, route, status, "application/json", dump(body), headers);
  }
  int error(const Request& req, const std::string& route, int status, const std::string& message, Json extra = {}) {
    Json body = {{"error", message}};
    if (extra.is_object()) body.update(extra);
    return json(req, route, status, body);
  }

  bool authorized(const Request& req) const {
    if (config.api_token.empty()) return true;
    const std::string auth = req.header("Authorization");
    if (auth.rfind("Bearer ", 0) == 0 && config::same_secret(auth.substr(7), config.api_token)) return true;
    // EventSource cannot send headers: the stream also takes ?access_token=.
    const std::string token = req.param("access_token");
    return config::same_secret(token, config.api_token);
  }

  std::optional<std::string> read_body(const Request& req) {
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

  // -- routes ---------------------------------------------------------------------------------
  int dispatch(mg_connection* conn) {
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

  int route(const Request& req) {
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

  int proxy_dlq(const Request& req, const std::string& route, const std::string& path, const Json& body) {
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

  // POST /api/jobs {"job_id": J, "tasks": [task, ...]}: fills what a task may leave out (id,
  // task_id, type DEV_TASK, created_at, job_id), validates every task against the schema and
  // path policy, and publishes all of them or none. POST /api/jobs {"job_id"?, "goal",
  // "constraints"?, "tenant"?} publishes the goal as one PLAN_TASK (job id goal-<random> if none).
  int submit(const Request& req) {
    auto body = read_body(req);
    if (!body) return error(req, "submit", 413, "the body is too large");
    Json doc;
    if (auto failure = events::MessageValidator::parse(*body, doc)) {
      return error(req, "submit", 400, "the body is not a JSON object: " + failure->message);
    }
    const bool goal = doc.contains("goal");
    if (goal && doc.contains("tasks")) return error(req, "submit", 400, "a job has \"goal\" or \"tasks\", not both");
    if (!goal && (!doc.contains("tasks") || !doc["tasks"].is_array() || doc["tasks"].empty())) {
      return error(req, "submit", 400, "\"tasks\" must be a non-empty array (or give a \"goal\")");
    }
    if (!goal && doc["tasks"].size() > 10000) return error(req, "submit", 400, "at most 10000 tasks per request");
    if (goal && !doc.contains("job_id")) doc["job_id"] = "goal-" + random_hex(6);
    if (!doc.contains("job_id") || !doc["job_id"].is_string()) {
      return error(req, "submit", 400, "\"job_id\" (a string) names the job of the tasks");
    }
    const std::string job_id = doc["job_id"];
    if (job_id.empty() || job_id.size() > 120 ||
        job_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
            std::string::npos) {
      return error(req, "submit", 400, "\"job_id\" must be 1 to 120 of A-Z a-z 0-9 . _ : -");
    }
    for (const auto& [key, value] : doc.items()) {
      const bool known =
          key == "job_id" ||
          (goal ? key == "goal" || key == "constraints" || key == "tenant" || key == "plan" : key == "tasks");
      if (!known) return error(req, "submit", 400, "unknown key \"" + key + "\"");
    }
    Json problems = Json::array();
    std::vector<Json> tasks;
    if (goal) {
      // A goal is one PLAN_TASK (docs/planning.md); the same checks as any task.
      if (!doc["goal"].is_string() || doc["goal"].get<std::string>().empty())
        return error(req, "submit", 400, "\"goal\" must be a non-empty string");
      if (doc.contains("tenant") && !doc["tenant"].is_string())
        return error(req, "submit", 400, "\"tenant\" must be a string");
      doc["tasks"] = Json::array(
          {events::make_plan_task(job_id, doc["goal"], doc.value("constraints", Json()), doc.value("tenant", ""))});
      // As given, so the schema refuses what is not an object.
      if (doc.contains("constraints")) doc["tasks"][0]["payload"]["constraints"] = doc["constraints"];
      if (doc.contains("plan")) doc["tasks"][0]["payload"]["plan"] = doc["plan"];
    }
    const std::string batch = random_hex(8);
    for (std::size_t i = 0; i < doc["tasks"].size(); ++i) {
      Json task = doc["tasks"][i];
      if (!task.is_object()) {
        problems.push_back(
            {{"index", i}, {"error_class", "schema_violation"}, {"message", "a task must be an object"}});
        continue;
      }
      if (!task.contains("job_id")) task["job_id"] = job_id;
      if (task["job_id"] != job_id) {
        problems.push_back(
            {{"index", i}, {"error_class", "schema_violation"}, {"message", "job_id differs from the request's"}});
        continue;
      }
      const std::string job = task.value("job_id", "");
      if (!task.contains("task_id")) task["task_id"] = job + "-" + std::to_string(i + 1);
      if (!task.contains("id")) task["id"] = "gw-" + batch + "-" + std::to_string(i + 1);
      if (!task.contains("type")) task["type"] = "DEV_TASK";
      if (!task.contains("created_at")) task["created_at"] = events::now_iso8601();
      if (auto failure = validator.validate_task(task)) {
        problems.push_back({{"index", i},
                            {"error_class", failure->error_class},
                            {"message", kafka::bounded_message(failure->message, 400)}});
        continue;
      }
      tasks.push_back(std::move(task));
    }
    if (!problems.empty()) {
      rejected_tasks->Increment(static_cast<double>(doc["tasks"].size()));
      return json(req, "submit", 400, Json{{"error", "invalid tasks: nothing was submitted"}, {"problems", problems}});
    }
    std::atomic<int> failed{0};
    std::mutex error_mutex;
    std::string first_error;
    for (const auto& task : tasks) {
      // A submission starts its trace.
      auto record = events::make_record(config.tasks_topic, task["task_id"].get<std::string>(), task, nullptr,
                                        goal ? events::kPlanTaskSchemaId : events::kTaskSchemaId);
      record.headers.push_back(
          {std::string(kafka::headers::kTraceparent), "00-" + random_hex(16) + "-" + random_hex(8) + "-01"});
      producer.send(record, [&](const kafka::DeliveryReport& r) {
        if (r.ok) return;
        ++failed;
        std::lock_guard lock(error_mutex);
        if (first_error.empty()) first_error = r.error;
      });
    }
    // The callbacks refer to this frame: wait for every one of them.
    while (!producer.flush(std::chrono::seconds(10))) {
    }
    if (failed > 0) {
      return error(req, "submit", 503,
                   "Kafka did not acknowledge " + std::to_string(failed.load()) + " of " +
                       std::to_string(tasks.size()) + " tasks: " + first_error);
    }
    submitted_tasks->Increment(static_cast<double>(tasks.size()));
    std::set<std::string> jobs;
    for (const auto& t : tasks) jobs.insert(t["job_id"].get<std::string>());
    Json links = Json::array();
    for (const auto& j : jobs) {
      links.push_back({{"job_id", j},
                       {"job", "/api/jobs/" + j},
                       {"progress", "/api/jobs/" + j + "/progress"},
                       {"stream", "/api/progress/stream/" + j}});
    }
    return json(req, "submit", 202, Json{{"submitted", tasks.size()}, {"job_id", job_id}, {"jobs", links}});
  }

  // GET /api/progress/stream/{id}: "progress" events (id: the job's sequence), "final" once every
  // file reached its end, "error" for a job that never appears; a comment line as heartbeat.
  // The first event of a connection carries the whole job document; every later one only what
  // changed since the event before — the summary and the files that changed, marked
  // "delta": true — so a 10,000-file job costs a client its changes, not its size per event.
  // Last-Event-ID (header or ?last_event_id=) resumes: a client that has seen the job's current
  // sequence gets nothing until it changes; otherwise the first event is the document again.
  int stream(const Request& req, const std::string& job_id) {
    if (streams.load() >= config.max_streams) return error(req, "stream", 503, "too many open streams");
    std::int64_t last = -1;
    std::string resume = req.header("Last-Event-ID");
    if (resume.empty()) resume = req.param("last_event_id");
    if (!resume.empty()) {
      if (resume.size() > 18 || resume.find_first_not_of("0123456789") != std::string::npos) {
        return error(req, "stream", 400, "Last-Event-ID must be an event id (digits)");
      }
      last = std::stoll(resume);
    }
    ++streams;
    open_streams->Increment();
    struct Closer {
      Impl* self;
      ~Closer() {
        --self->streams;
        self->open_streams->Decrement();
      }
    } closer{this};
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n"
        "X-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";
    requests->Add({{"route", "stream"}, {"code", "200"}}).Increment();
    if (mg_write(req.conn, head.data(), head.size()) <= 0) return 200;
    auto write = [&](std::string_view text) { return mg_write(req.conn, text.data(), text.size()) > 0; };
    // The document goes out in pieces as it is put together (a 10,000-file job is ~2 MB).
    auto write_event = [&](const JobSnapshot& snap, const char* type) {
      return write("id: " + std::to_string(snap.sequence) + "\nevent: " + type + "\ndata: ") && snap.write(write) &&
             write("\n\n");
    };
    const auto appear_deadline = std::chrono::steady_clock::now() + config.unknown_job_wait;
    auto next_beat = std::chrono::steady_clock::now() + config.heartbeat;
    bool sent_document = false;  // the first event is the whole document, later ones changes
    while (!stopping.load()) {
      const auto now = std::chrono::steady_clock::now();
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::max(next_beat - now, std::chrono::steady_clock::duration::zero()));
      auto snap = view.wait_for_change(job_id, last, std::min(wait, std::chrono::milliseconds(1000)),
                                       sent_document ? last : -1);
      if (stopping.load()) break;
      if (snap && snap->sequence > last) {
        last = snap->sequence;
        if (sent_document) snap->summary["delta"] = true;
        sent_document = true;
        if (!write_event(*snap, snap->complete ? "final" : "progress")) return 200;
        next_beat = std::chrono::steady_clock::now() + config.heartbeat;
        if (snap->complete) return 200;
        // The changes of the next interval go out as one event (a 10,000-file job changes
        // thousands of times a minute; a reader needs a few updates a second).
        const auto quiet_until = std::chrono::steady_clock::now() + config.min_event_interval;
        while (!stopping.load() && std::chrono::steady_clock::now() < quiet_until)
          std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
              quiet_until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
        continue;
      }
      if (snap && snap->complete && last >= snap->sequence) {
        // Resumed after the final event: say so once more (the whole document) and end.
        if (sent_document) snap = view.job(job_id);
        if (snap) write_event(*snap, "final");
        return 200;
      }
      if (!snap && std::chrono::steady_clock::now() >= appear_deadline) {
        write("event: error\ndata: " + dump(Json{{"error", "no job " + job_id + " on jobs.progress"}}) + "\n\n");
        return 200;
      }
      if (std::chrono::steady_clock::now() >= next_beat) {
        if (!write(": heartbeat\n\n")) return 200;  // the client went away
        next_beat = std::chrono::steady_clock::now() + config.heartbeat;
      }
    }
    write("event: error\ndata: {\"error\": \"the gateway is shutting down\"}\n\n");
    return 200;
  }
};

namespace {
int handle(mg_connection* conn, void* cbdata) { return static_cast<Gateway::Impl*>(cbdata)->dispatch(conn); }
}  // namespace

Gateway::Gateway(GatewayConfig config, ProgressView& view, kafka::Producer& producer,
                 const events::MessageValidator& validator, std::shared_ptr<prometheus::Registry> registry,
                 std::shared_ptr<observability::HealthState> health)
    : impl_(std::make_unique<Impl>(std::move(config), view, producer, validator, std::move(registry),
                                   std::move(health))) {}

Gateway::~Gateway() { stop(); }

void Gateway::start() {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  const std::string ports = impl_->config.host + ":" + std::to_string(impl_->config.port);
  const std::string threads = std::to_string(impl_->config.max_streams + 16);
  const char* options[] = {"listening_ports",    ports.c_str(),       "num_threads",
                           threads.c_str(),      "enable_keep_alive", "yes",
                           "request_timeout_ms", "3600000",           nullptr};
  mg_callbacks callbacks{};
  impl_->ctx = mg_start(&callbacks, nullptr, options);
  if (impl_->ctx == nullptr) throw std::runtime_error("cannot listen on " + ports);
  mg_set_request_handler(impl_->ctx, "/", handle, impl_.get());
  mg_server_port bound[4];
  const int n = mg_get_server_ports(impl_->ctx, 4, bound);
  impl_->bound_port = n > 0 ? bound[0].port : impl_->config.port;
}

void Gateway::stop() {
  if (impl_->ctx == nullptr) return;
  impl_->stopping.store(true);
  impl_->view.stop();
  mg_stop(impl_->ctx);
  impl_->ctx = nullptr;
}

int Gateway::port() const { return impl_->bound_port; }

}  // namespace agentline::gateway
