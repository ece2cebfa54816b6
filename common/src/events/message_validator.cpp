#include "agentline/events/message_validator.h"

#include <simdjson.h>
#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <stdexcept>

#include "agentline/config/resources.h"
#include "agentline/events/ids.h"
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

// The envelope's reading (read_envelope): a field's value as the schemas state it.
namespace ondemand = simdjson::ondemand;

Failure malformed(simdjson::error_code error) {
  return Failure::bad_input("malformed_json", std::string("invalid JSON: ") + simdjson::error_message(error));
}

// An id field: a string of 1 to kMaxIdLength characters of the schemas' id pattern.
bool id_text(std::string_view text) {
  if (text.empty() || text.size() > kMaxIdLength) return false;
  for (const char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A string field's value; `is_text` false (and `out` untouched) when it is not a string.
simdjson::error_code read_text(ondemand::value& value, std::string& out, bool& is_text) {
  ondemand::json_type type;
  if (auto error = value.type().get(type)) return error;
  is_text = type == ondemand::json_type::string;
  if (!is_text) return simdjson::SUCCESS;
  std::string_view text;
  if (auto error = value.get_string().get(text)) return error;
  out.assign(text);
  return simdjson::SUCCESS;
}

// One of the usage fields (prompt_tokens, completion_tokens, cost_usd) into `out`; any other
// key, or a value that is not a number, leaves it as it is.
simdjson::error_code read_usage(std::string_view key, ondemand::value& value, EventEnvelope::Usage& out) {
  double* target = key == "prompt_tokens"       ? &out.prompt_tokens
                   : key == "completion_tokens" ? &out.completion_tokens
                   : key == "cost_usd"          ? &out.cost_usd
                                                : nullptr;
  if (!target) return simdjson::SUCCESS;
  ondemand::json_type type;
  if (auto error = value.type().get(type)) return error;
  return type == ondemand::json_type::number ? value.get_double().get(*target) : simdjson::SUCCESS;
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

std::optional<Failure> MessageValidator::read_envelope(std::string_view text, EventEnvelope& out) const {
  // simdjson reads ahead of the text's end: a per-thread copy with the padding it needs.
  thread_local ondemand::parser parser;
  thread_local std::string padded;
  padded.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  padded.assign(text);
  out = EventEnvelope();
  bool has_payload = false, has_path = false, path_text = true, attempt_ok = true;
  struct Id {
    const char* name;
    std::string* value;
    bool text = false;
  };
  std::array<Id, 4> ids{{{"id", &out.id}, {"type", &out.type}, {"job_id", &out.job_id}, {"task_id", &out.task_id}}};
  // Each field of an object, unwrapped: fn(key, value) returns an error to stop with.
  auto each_field = [](ondemand::object& object, auto&& fn) -> simdjson::error_code {
    for (auto result : object) {
      ondemand::field field;
      std::string_view key;
      if (auto error = std::move(result).get(field)) return error;
      if (auto error = field.unescaped_key().get(key)) return error;
      if (auto error = fn(key, field.value())) return error;
    }
    return simdjson::SUCCESS;
  };
  auto payload_field = [&](std::string_view key, ondemand::value& value) -> simdjson::error_code {
    if (key == "path") {
      has_path = true;
      return read_text(value, out.path, path_text);
    }
    if (key == "fix_attempt") {
      // An integer >= 0 as the schema says (one beyond int64 too); the envelope holds at most INT_MAX.
      std::int64_t signed_attempt = 0;
      std::uint64_t attempt = 0;
      if (!value.get_int64().get(signed_attempt)) {
        attempt_ok = signed_attempt >= 0;
        attempt = attempt_ok ? static_cast<std::uint64_t>(signed_attempt) : 0;
      } else {
        attempt_ok = !value.get_uint64().get(attempt);
      }
      out.fix_attempt = static_cast<int>(std::min<std::uint64_t>(attempt, std::numeric_limits<int>::max()));
      return simdjson::SUCCESS;
    }
    if (key != "review") return read_usage(key, value, out.usage);
    out.reviewed = true;
    out.review_usage = {};  // a repeated key: the last one counts, as in the full parse
    ondemand::json_type type;
    if (auto error = value.type().get(type)) return error;
    if (type != ondemand::json_type::object) return simdjson::SUCCESS;
    ondemand::object review;
    if (auto error = value.get_object().get(review)) return error;
    return each_field(review,
                      [&](std::string_view k, ondemand::value& v) { return read_usage(k, v, out.review_usage); });
  };
  auto message_field = [&](std::string_view key, ondemand::value& value) -> simdjson::error_code {
    if (key == "payload") {
      // A repeated key: the last one counts, as in the full parse.
      const EventEnvelope ids_only{out.id, out.type, out.job_id, out.task_id};
      out = ids_only;
      has_path = false;
      path_text = true;
      attempt_ok = true;
      ondemand::json_type type;
      if (auto error = value.type().get(type)) return error;
      has_payload = type == ondemand::json_type::object;
      if (!has_payload) return simdjson::SUCCESS;
      ondemand::object payload;
      if (auto error = value.get_object().get(payload)) return error;
      return each_field(payload, payload_field);
    }
    for (auto& id : ids) {
      if (key == id.name) return read_text(value, *id.value, id.text);
    }
    return simdjson::SUCCESS;
  };
  auto read = [&]() -> simdjson::error_code {
    ondemand::document doc;
    ondemand::object message;
    if (auto error = parser.iterate(padded.data(), padded.size(), padded.capacity()).get(doc)) return error;
    if (auto error = doc.get_object().get(message)) return error;
    if (auto error = each_field(message, message_field)) return error;
    // At the end of the text the location is out of bounds: anything else is a second value.
    const char* rest = nullptr;
    return doc.current_location().get(rest) ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
  };
  if (auto error = read()) {
    if (error == simdjson::INCORRECT_TYPE) return Failure::bad_input("malformed_json", "value is not a JSON object");
    return malformed(error);
  }
  if (!ids[1].text) return Failure::bad_input("schema_violation", "event has no string field 'type'");
  const auto schema = impl_->events.find(out.type);
  if (schema == impl_->events.end())
    return Failure::bad_input("unknown_event_type", "unknown event type '" + out.type.substr(0, 64) + "'");
  const std::string& where = schema->second.id;
  for (const auto& id : ids) {
    if (!id.text || !id_text(*id.value)) {
      return Failure::bad_input("schema_violation", where + ": /" + id.name + ": a string of 1 to " +
                                                        std::to_string(kMaxIdLength) + " of [A-Za-z0-9._:-]");
    }
  }
  for (const auto* id : {&ids[2], &ids[3]}) {
    if (auto reason = unsafe_id_reason(*id->value))
      return Failure::bad_input("unsafe_id", std::string(id->name) + ": " + *reason);
  }
  if (!has_payload) return Failure::bad_input("schema_violation", where + ": /payload: an object");
  if (!attempt_ok) return Failure::bad_input("schema_violation", where + ": /payload/fix_attempt: an integer >= 0");
  if (has_path) {
    // The schema counts characters (UTF-8 code points), not bytes.
    const auto characters = std::count_if(out.path.begin(), out.path.end(),
                                          [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
    if (!path_text || characters == 0 || characters > 1024)
      return Failure::bad_input("schema_violation", where + ": /payload/path: a string of 1 to 1024 characters");
    if (auto reason = unsafe_path_reason(out.path)) return Failure::bad_input("unsafe_path", *reason);
  }
  return std::nullopt;
}

std::string MessageValidator::event_schema_id(std::string_view type) const {
  auto it = impl_->events.find(type);
  return it == impl_->events.end() ? std::string() : it->second.id;
}

}  // namespace agentline::events
