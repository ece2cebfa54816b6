#pragma once
// Validation of message values at service boundaries, against the JSON Schemas in schemas/
// (compiled into the binary). Every rejection is a bad-input Failure whose class names the
// rule broken: malformed_json, schema_violation, unknown_event_type, unsafe_path.
// Thread-safe after construction.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "agentline/kafka/failure.h"

namespace agentline::events {

inline constexpr std::string_view kTaskSchemaId = "agentline.task.v1";
inline constexpr std::string_view kPlanTaskSchemaId = "agentline.plan_task.v1";

// The fields that route an event, read from its text without building the document.
struct EventEnvelope {
  // What an LLM call cost, as an event's payload (or its review) states it; absent: 0.
  struct Usage {
    double prompt_tokens = 0;
    double completion_tokens = 0;
    double cost_usd = 0;
  };
  std::string id;
  std::string type;
  std::string job_id;
  std::string task_id;
  std::string path;       // payload.path; "" when the event names no file
  int fix_attempt = 0;    // payload.fix_attempt
  bool reviewed = false;  // payload.review is there (a model review's answer)
  Usage usage;            // payload's prompt_tokens, completion_tokens, cost_usd
  Usage review_usage;     // the same fields of payload.review
};

class MessageValidator {
 public:
  MessageValidator();
  ~MessageValidator();
  MessageValidator(const MessageValidator&) = delete;
  MessageValidator& operator=(const MessageValidator&) = delete;

  // Parses UTF-8 JSON text into `out` (an object); "malformed_json" on failure.
  static std::optional<kafka::Failure> parse(std::string_view text, nlohmann::json& out);

  // A task: DEV_TASK / FIX_TASK against task.json, PLAN_TASK / REPLAN_TASK against
  // plan_task.json; then the path policy on its file, if it names one.
  std::optional<kafka::Failure> validate_task(const nlohmann::json& message) const;
  // An event: the schema of its `type`; unknown types are "unknown_event_type".
  std::optional<kafka::Failure> validate_event(const nlohmann::json& message) const;
  // An event's envelope, read on demand (simdjson): the text must be one JSON object of a known
  // type whose id, task_id and job_id are ids (the schemas' pattern and length, then the id
  // policy), whose payload is an object, and whose payload.path, when there, passes the path
  // policy; the same classes as validate_event. The rest of the event is not read, so not
  // checked: a service that reads more of it validates it in full (qa-worker and
  // outbox-uploader their input; the router the events it reads beyond the envelope).
  std::optional<kafka::Failure> read_envelope(std::string_view text, EventEnvelope& out) const;
  // The schema id ($id) for an event type, "" if unknown.
  std::string event_schema_id(std::string_view type) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::events
