#include "dead_letter_record.h"

#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "agentline/kafka/dead_letter.h"

namespace agentline::dlq {
namespace {

std::optional<std::string> get(const kafka::InboundRecord& r, std::string_view name) {
  if (auto v = r.header(name)) return std::string(*v);
  return std::nullopt;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

// Spring writes partition (4 bytes) and offset/timestamp (8 bytes) as big-endian binary;
// other writers use decimal text. Both are accepted.
std::optional<std::int64_t> number(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  if (all_digits(*v)) {
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec == std::errc()) return out;
    return std::nullopt;
  }
  if (v->size() == 4 || v->size() == 8) {
    std::uint64_t out = 0;
    for (unsigned char c : *v) out = (out << 8) | c;
    if (v->size() == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(out));
    return static_cast<std::int64_t>(out);
  }
  return std::nullopt;
}

bool is_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string label_safe(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 64)) {
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ? c : '_';
  }
  return out.empty() ? "unknown" : out;
}

DeadLetter describe(const kafka::InboundRecord& r) {
  namespace h = kafka::headers;
  DeadLetter d;
  if (auto topic = get(r, h::kOriginalTopic)) {
    d.dialect = "agentline";
    d.original_topic = *topic;
    d.original_partition = static_cast<std::int32_t>(number(get(r, h::kOriginalPartition)).value_or(-1));
    d.original_offset = number(get(r, h::kOriginalOffset)).value_or(-1);
    d.original_timestamp_ms = number(get(r, h::kOriginalTimestamp)).value_or(0);
    d.error_class = label_safe(get(r, h::kErrorClass).value_or("unknown"));
    d.error_message = get(r, h::kErrorMessage).value_or("");
    d.failed_service = get(r, h::kFailedService).value_or("");
    d.consumer_group = get(r, h::kConsumerGroup).value_or("");
    d.dead_lettered_ms = number(get(r, h::kDeadLetteredAt)).value_or(0);
  } else if (auto spring = get(r, "kafka_dlt-original-topic")) {
    d.dialect = "spring";
    d.original_topic = *spring;
    d.original_partition = static_cast<std::int32_t>(number(get(r, "kafka_dlt-original-partition")).value_or(-1));
    d.original_offset = number(get(r, "kafka_dlt-original-offset")).value_or(-1);
    d.original_timestamp_ms = number(get(r, "kafka_dlt-original-timestamp")).value_or(0);
    std::string fqcn = get(r, "kafka_dlt-exception-fqcn").value_or("unknown");
    if (auto dot = fqcn.rfind('.'); dot != std::string::npos) fqcn = fqcn.substr(dot + 1);
    d.error_class = label_safe(fqcn);
    d.error_message = get(r, "kafka_dlt-exception-message").value_or("");
    d.consumer_group = get(r, "kafka_dlt-original-consumer-group").value_or("");
    d.failed_service = d.consumer_group;
  } else if (auto connect = get(r, "__connect.errors.topic")) {
    d.dialect = "connect";
    d.original_topic = *connect;
    d.original_partition = static_cast<std::int32_t>(number(get(r, "__connect.errors.partition")).value_or(-1));
    d.original_offset = number(get(r, "__connect.errors.offset")).value_or(-1);
    std::string cls = get(r, "__connect.errors.exception.class.name").value_or("unknown");
    if (auto dot = cls.rfind('.'); dot != std::string::npos) cls = cls.substr(dot + 1);
    d.error_class = label_safe(cls);
    d.error_message = get(r, "__connect.errors.exception.message").value_or("");
    d.failed_service = get(r, "__connect.errors.connector.name").value_or("");
    d.consumer_group = d.failed_service.empty() ? "" : "connect-" + d.failed_service;
  }
  d.error_message = kafka::bounded_message(d.error_message, h::kMaxErrorMessageBytes);
  d.replay_count = static_cast<int>(number(get(r, h::kReplayCount)).value_or(0));
  if (d.dead_lettered_ms == 0) d.dead_lettered_ms = r.timestamp_ms;

  auto value = nlohmann::json::parse(r.value, nullptr, false);
  if (value.is_object()) {
    if (value.contains("job_id") && value["job_id"].is_string()) d.job_id = value["job_id"];
    if (value.contains("task_id") && value["task_id"].is_string()) d.task_id = value["task_id"];
  }
  if (d.task_id.empty() && r.key && is_id(*r.key) && d.original_topic.find("deploy.requests") == std::string::npos)
    d.task_id = *r.key;
  if (!is_id(d.job_id)) d.job_id.clear();
  if (!is_id(d.task_id)) d.task_id.clear();
  return d;
}

kafka::Headers replay_headers(const kafka::Headers& in, int replay_count, const std::string& replayed_from) {
  kafka::Headers out;
  for (const auto& hdr : in) {
    const std::string_view k = hdr.key;
    const bool bookkeeping = (k.rfind("agentline-", 0) == 0 && k != kafka::headers::kSchema) ||
                             k.rfind("kafka_dlt-", 0) == 0 || k.rfind("__connect.errors.", 0) == 0;
    if (!bookkeeping) out.push_back(hdr);
  }
  out.push_back({std::string(kafka::headers::kReplayCount), std::to_string(replay_count)});
  out.push_back({std::string(kafka::headers::kReplayedFrom), replayed_from});
  return out;
}

}  // namespace agentline::dlq
