// libFuzzer target: a message value as a service receives it from Kafka. Parsing and schema
// validation of tasks and events must answer every input with "valid" or a classified Failure,
// never crash, hang or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agentline/events/message_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const agentline::events::MessageValidator validator;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json message;
  if (auto failure = agentline::events::MessageValidator::parse(text, message)) {
    if (failure->error_class != "malformed_json") __builtin_trap();
    return 0;
  }
  for (auto verdict : {validator.validate_task(message), validator.validate_event(message)}) {
    if (verdict && verdict->error_class.empty()) __builtin_trap();  // every rejection names its rule
  }
  if (message.contains("type") && message["type"].is_string()) {
    (void)validator.event_schema_id(message["type"].get<std::string>());
  }
  return 0;
}
