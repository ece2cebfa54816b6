#include "agentline/events/record.h"

#include <nlohmann/json.hpp>

#include "agentline/kafka/dead_letter.h"

namespace agentline::events {

kafka::OutgoingRecord make_record(std::string topic, std::string key, const nlohmann::json& value,
                                  const kafka::InboundRecord* cause, std::string_view schema_id) {
  kafka::OutgoingRecord r;
  r.topic = std::move(topic);
  r.key = std::move(key);
  r.value = record_value(value);
  r.headers.push_back({std::string(kafka::headers::kContentType), "application/json"});
  if (!schema_id.empty()) r.headers.push_back({std::string(kafka::headers::kSchema), std::string(schema_id)});
  if (cause != nullptr) {
    if (auto trace = cause->header(kafka::headers::kTraceparent))
      r.headers.push_back({std::string(kafka::headers::kTraceparent), std::string(*trace)});
    // Work replayed from the DLQ stays a replay downstream: the router lets its events move a
    // dead-lettered file on again (job_progress.h), the outbox stages its item again.
    if (auto replay = cause->header(kafka::headers::kReplayCount))
      r.headers.push_back({std::string(kafka::headers::kReplayCount), std::string(*replay)});
  }
  return r;
}

std::string record_value(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace agentline::events
