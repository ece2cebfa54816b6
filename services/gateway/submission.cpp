#include <mutex>
#include <random>
#include <set>

#include "agentline/events/plan_task.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "gateway_impl.h"

namespace agentline::gateway {

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

bool valid_job_id(const std::string& id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
             std::string::npos;
}

// The contract is in gateway_impl.h.
void Gateway::Impl::submit(HttpExchange& x) {
  auto body = x.read_body(config.max_body_bytes);
  if (!body) return error(x, 413, "the body is too large");
  Json doc;
  if (auto failure = events::MessageValidator::parse(*body, doc)) {
    return error(x, 400, "the body is not a JSON object: " + failure->message);
  }
  const bool goal = doc.contains("goal");
  if (goal && doc.contains("tasks")) return error(x, 400, "a job has \"goal\" or \"tasks\", not both");
  if (!goal && (!doc.contains("tasks") || !doc["tasks"].is_array() || doc["tasks"].empty())) {
    return error(x, 400, "\"tasks\" must be a non-empty array (or give a \"goal\")");
  }
  if (!goal && doc["tasks"].size() > 10000) return error(x, 400, "at most 10000 tasks per request");
  if (goal && !doc.contains("job_id")) doc["job_id"] = "goal-" + random_hex(6);
  if (!doc.contains("job_id") || !doc["job_id"].is_string()) {
    return error(x, 400, "\"job_id\" (a string) names the job of the tasks");
  }
  const std::string job_id = doc["job_id"];
  if (job_id.empty() || job_id.size() > 120 ||
      job_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
          std::string::npos) {
    return error(x, 400, "\"job_id\" must be 1 to 120 of A-Z a-z 0-9 . _ : -");
  }
  for (const auto& [key, value] : doc.items()) {
    const bool known = key == "job_id" || (goal ? key == "goal" || key == "constraints" || key == "tenant" ||
                                                      key == "plan" || key == "budget"
                                                : key == "tasks");
    if (!known) return error(x, 400, "unknown key \"" + key + "\"");
  }
  Json problems = Json::array();
  std::vector<Json> tasks;
  if (goal) {
    // A goal is one PLAN_TASK (docs/planning.md); the same checks as any task.
    if (!doc["goal"].is_string() || doc["goal"].get<std::string>().empty())
      return error(x, 400, "\"goal\" must be a non-empty string");
    if (doc.contains("tenant") && !doc["tenant"].is_string()) return error(x, 400, "\"tenant\" must be a string");
    doc["tasks"] = Json::array(
        {events::make_plan_task(job_id, doc["goal"], doc.value("constraints", Json()), doc.value("tenant", ""))});
    // As given, so the schema refuses what is not an object.
    if (doc.contains("constraints")) doc["tasks"][0]["payload"]["constraints"] = doc["constraints"];
    if (doc.contains("plan")) doc["tasks"][0]["payload"]["plan"] = doc["plan"];
    if (doc.contains("budget")) doc["tasks"][0]["payload"]["budget"] = doc["budget"];
  }
  const std::string batch = random_hex(8);
  for (std::size_t i = 0; i < doc["tasks"].size(); ++i) {
    Json task = doc["tasks"][i];
    if (!task.is_object()) {
      problems.push_back({{"index", i}, {"error_class", "schema_violation"}, {"message", "a task must be an object"}});
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
    return json(x, 400, Json{{"error", "invalid tasks: nothing was submitted"}, {"problems", problems}});
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
    return error(x, 503,
                 "Kafka did not acknowledge " + std::to_string(failed.load()) + " of " + std::to_string(tasks.size()) +
                     " tasks: " + first_error);
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
  return json(x, 202, Json{{"submitted", tasks.size()}, {"job_id", job_id}, {"jobs", links}});
}

}  // namespace agentline::gateway
