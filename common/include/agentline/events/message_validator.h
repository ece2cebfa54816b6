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
  // The schema id ($id) for an event type, "" if unknown.
  std::string event_schema_id(std::string_view type) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::events
