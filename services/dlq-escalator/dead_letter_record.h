#pragma once
// What a DLQ record says about itself, whoever wrote it. Three header dialects are read:
//  - Agentline (agentline-original-topic, agentline-error-class, ...; docs/headers.md);
//  - Spring Kafka's DeadLetterPublishingRecoverer (kafka_dlt-original-topic, with partition
//    and offset as big-endian binary numbers, kafka_dlt-exception-fqcn / -message);
//  - Kafka Connect's errors.deadletterqueue.context.headers.enable (__connect.errors.topic,
//    __connect.errors.exception.class.name / .message, all strings).
// Job and task ids come from the value's JSON when it has them, else the task id from the key.
#include <cstdint>
#include <optional>
#include <string>

#include "agentline/kafka/record.h"

namespace agentline::dlq {

struct DeadLetter {
  std::string dialect = "unknown";  // agentline | spring | connect | unknown
  std::string original_topic;       // "" when no header names it
  std::int32_t original_partition = -1;
  std::int64_t original_offset = -1;
  std::int64_t original_timestamp_ms = 0;
  std::string error_class = "unknown";  // low cardinality: the reason's class
  std::string error_message;
  std::string failed_service;
  std::string consumer_group;
  std::string job_id;   // "" when unknown
  std::string task_id;  // "" when unknown
  int replay_count = 0;
  std::int64_t dead_lettered_ms = 0;
};

DeadLetter describe(const kafka::InboundRecord& record);

// The headers a replayed copy carries: the record's own headers without the DLQ bookkeeping
// of any dialect, plus agentline-replay-count = replay_count and agentline-replayed-from.
kafka::Headers replay_headers(const kafka::Headers& dead_letter_headers, int replay_count,
                              const std::string& replayed_from);

// Error classes are metric labels: anything unexpected is folded into a bounded token.
std::string label_safe(std::string_view text);

}  // namespace agentline::dlq
