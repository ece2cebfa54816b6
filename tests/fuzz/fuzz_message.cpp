// libFuzzer target: a message value as a service receives it from Kafka. Parsing and schema
// validation of tasks and events, and the router's on-demand read of an event's envelope, must
// answer every input with "valid" or a classified Failure, never crash, hang or throw; an event
// the full check accepts has an envelope that reads the same fields.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agentline/events/message_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const agentline::events::MessageValidator validator;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  agentline::events::EventEnvelope envelope;
  const auto envelope_verdict = validator.read_envelope(text, envelope);
  if (envelope_verdict && envelope_verdict->error_class.empty()) __builtin_trap();
  nlohmann::json message;
  if (auto failure = agentline::events::MessageValidator::parse(text, message)) {
    if (failure->error_class != "malformed_json") __builtin_trap();
    return 0;
  }
  for (auto verdict : {validator.validate_task(message), validator.validate_event(message)}) {
    if (verdict && verdict->error_class.empty()) __builtin_trap();  // every rejection names its rule
  }
  // (simdjson refuses nesting deeper than 1024 levels, which the full parse takes.)
  const bool too_deep = envelope_verdict && envelope_verdict->message.find("too deep") != std::string::npos;
  if (!validator.validate_event(message) && !too_deep) {
    if (envelope_verdict) __builtin_trap();
    const auto& payload = message["payload"];
    const auto attempt = payload.value("fix_attempt", std::uint64_t{0});
    if (envelope.id != message["id"] || envelope.type != message["type"] || envelope.job_id != message["job_id"] ||
        envelope.task_id != message["task_id"] || envelope.path != payload.value("path", "") ||
        static_cast<std::uint64_t>(envelope.fix_attempt) != std::min<std::uint64_t>(attempt, INT32_MAX))
      __builtin_trap();
  }
  if (message.contains("type") && message["type"].is_string()) {
    (void)validator.event_schema_id(message["type"].get<std::string>());
  }
  return 0;
}
