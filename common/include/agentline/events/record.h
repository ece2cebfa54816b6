#pragma once
// The record every service writes: a JSON value with its content type, its schema id when it
// has one, and the trace of the record that caused it (W3C traceparent), so a task's trace
// runs through every topic it crosses.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "agentline/kafka/record.h"

namespace agentline::events {

// `value` as compact JSON (invalid UTF-8 replaced, never thrown on); `cause` may be null. From
// `cause` the record carries on its traceparent and its replay count (agentline-replay-count).
kafka::OutgoingRecord make_record(std::string topic, std::string key, const nlohmann::json& value,
                                  const kafka::InboundRecord* cause, std::string_view schema_id = {});
// The value make_record writes for `value`.
std::string record_value(const nlohmann::json& value);

}  // namespace agentline::events
