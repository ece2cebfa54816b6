#include "agentline/events/message_validator.h"

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <map>
#include <stdexcept>

#include "agentline/config/resources.h"
#include "agentline/events/path_policy.h"

namespace agentline::events {

using kafka::Failure;

namespace {

constexpr std::size_t kMaxReasonBytes = 900;

struct CompiledSchema {
  std::string id;
  std::unique_ptr<valijson::Schema> schema = std::make_unique<valijson::Schema>();
};

void compile(CompiledSchema& out, std::string_view resource) {
  auto text = config::embedded_resource(resource);
  if (!text) throw std::logic_error("schema not embedded: " + std::string(resource));
  nlohmann::json doc = nlohmann::json::parse(*text);
  out.id = doc.value("$id", "");
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::NlohmannJsonAdapter adapter(doc);
  parser.populateSchema(adapter, *out.schema);
}

// The first few validation errors as "at /payload/path: ...; ...".
std::optional<Failure> check(const CompiledSchema& compiled, const nlohmann::json& message) {
  // One validator per thread: it caches the compiled std::regex of every "pattern". A fresh
  // validator per message compiled them all again, and std::regex construction serializes
  // threads on the global locale (the router ran at 1/15 of a bare consume-produce loop).
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(message);
  if (validator.validate(*compiled.schema, adapter, &results)) return std::nullopt;
  std::string reason = compiled.id + ": ";
  valijson::ValidationResults::Error error;
  int shown = 0;
  // valijson reports from the outside in; the innermost error says the most, so keep leaf
  // errors (the deepest context) first.
  std::vector<valijson::ValidationResults::Error> errors;
  while (results.popError(error)) errors.push_back(error);
  std::stable_sort(errors.begin(), errors.end(),
                   [](const auto& a, const auto& b) { return a.context.size() > b.context.size(); });
  for (const auto& e : errors) {
    std::string where;
    for (const auto& part : e.context) {
      if (part == "<root>") continue;
      where += part;
    }
    if (shown > 0) reason += "; ";
    reason += (where.empty() ? "<root>" : where) + ": " + e.description;
    if (++shown == 3 || reason.size() > kMaxReasonBytes) break;
  }
  return Failure::bad_input("schema_violation", reason);
}

// After the schema: job_id and task_id are strings of the id pattern.
std::optional<Failure> unsafe_ids(const nlohmann::json& message) {
  for (const char* key : {"job_id", "task_id"}) {
    const auto id = message.find(key);
    if (id == message.end() || !id->is_string()) continue;
    if (auto reason = unsafe_id_reason(id->get_ref<const std::string&>()))
      return Failure::bad_input("unsafe_id", std::string(key) + ": " + *reason);
  }
  return std::nullopt;
}

}  // namespace

struct MessageValidator::Impl {
  CompiledSchema task;
  CompiledSchema plan_task;                                   // PLAN_TASK, REPLAN_TASK
  std::map<std::string, CompiledSchema, std::less<>> events;  // by event type
};

MessageValidator::MessageValidator() : impl_(std::make_unique<Impl>()) {
  compile(impl_->task, "schemas/task.json");
  compile(impl_->plan_task, "schemas/plan_task.json");
  for (auto name : config::embedded_resource_names()) {
    if (name.rfind("schemas/events/", 0) != 0) continue;
    nlohmann::json doc = nlohmann::json::parse(*config::embedded_resource(name));
    std::string type = doc.at("title").get<std::string>();
    compile(impl_->events[type], name);
  }
}

MessageValidator::~MessageValidator() = default;

std::optional<Failure> MessageValidator::parse(std::string_view text, nlohmann::json& out) {
  try {
    out = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return Failure::bad_input("malformed_json", e.what());
  }
  if (!out.is_object()) return Failure::bad_input("malformed_json", "value is not a JSON object");
  return std::nullopt;
}

std::optional<Failure> MessageValidator::validate_task(const nlohmann::json& message) const {
  const auto type = message.find("type");
  const bool plan = type != message.end() && type->is_string() && (*type == "PLAN_TASK" || *type == "REPLAN_TASK");
  if (auto failure = check(plan ? impl_->plan_task : impl_->task, message)) return failure;
  if (auto failure = unsafe_ids(message)) return failure;
  const auto& payload = message["payload"];
  const auto path = payload.find("path");
  if (path == payload.end()) {
    // Only a PLAN_TASK has no file (task.json requires one of the others).
    if (*type == "REPLAN_TASK")
      return Failure::bad_input("schema_violation", "a REPLAN_TASK names its file: payload.path");
    return std::nullopt;
  }
  if (*type == "REPLAN_TASK" && (!payload.contains("description") || !payload.contains("content"))) {
    return Failure::bad_input("schema_violation", "a REPLAN_TASK carries payload.description and payload.content");
  }
  const auto& path_text = path->get_ref<const std::string&>();
  if (auto reason = unsafe_path_reason(path_text)) {
    return Failure::bad_input("unsafe_path", *reason + ": " + path_text.substr(0, 256));
  }
  return std::nullopt;
}

std::optional<Failure> MessageValidator::validate_event(const nlohmann::json& message) const {
  auto type_it = message.find("type");
  if (type_it == message.end() || !type_it->is_string()) {
    return Failure::bad_input("schema_violation", "event has no string field 'type'");
  }
  auto schema = impl_->events.find(type_it->get_ref<const std::string&>());
  if (schema == impl_->events.end()) {
    return Failure::bad_input("unknown_event_type",
                              "unknown event type '" + type_it->get<std::string>().substr(0, 64) + "'");
  }
  if (auto failure = check(schema->second, message)) return failure;
  if (auto failure = unsafe_ids(message)) return failure;
  auto payload = message.find("payload");
  if (auto path = payload->find("path"); path != payload->end()) {
    if (auto reason = unsafe_path_reason(path->get_ref<const std::string&>())) {
      return Failure::bad_input("unsafe_path", *reason);
    }
  }
  return std::nullopt;
}

std::string MessageValidator::event_schema_id(std::string_view type) const {
  auto it = impl_->events.find(type);
  return it == impl_->events.end() ? std::string() : it->second.id;
}

}  // namespace agentline::events
