#pragma once
// Every Kafka header name Agentline writes or reads, in one place; docs/headers.md documents
// them.
#include <string_view>

namespace agentline::kafka::headers {
inline constexpr std::string_view kContentType = "content-type";
inline constexpr std::string_view kSchema = "agentline-schema";
inline constexpr std::string_view kTraceparent = "traceparent";
inline constexpr std::string_view kAttempt = "agentline-attempt";
inline constexpr std::string_view kRetryDue = "agentline-retry-due";
inline constexpr std::string_view kRetryTier = "agentline-retry-tier";
inline constexpr std::string_view kOriginalTopic = "agentline-original-topic";
inline constexpr std::string_view kOriginalPartition = "agentline-original-partition";
inline constexpr std::string_view kOriginalOffset = "agentline-original-offset";
inline constexpr std::string_view kOriginalTimestamp = "agentline-original-timestamp";
inline constexpr std::string_view kConsumerGroup = "agentline-consumer-group";
inline constexpr std::string_view kErrorClass = "agentline-error-class";
inline constexpr std::string_view kErrorMessage = "agentline-error-message";
inline constexpr std::string_view kFailedService = "agentline-failed-service";
inline constexpr std::string_view kDeadLetteredAt = "agentline-dead-lettered-at";
// Set by `dlq-escalator replay` on the copy it sends, and carried onto a DLQ record again, so
// a record that fails every time is recognised (the loop guard).
inline constexpr std::string_view kReplayCount = "agentline-replay-count";
inline constexpr std::string_view kReplayedFrom = "agentline-replayed-from";
// On a deploy.requests record outbox-uploader sent back when its partition left the replica
// that had staged it (value: that replica's group); the next owner stages it as any record.
inline constexpr std::string_view kHandedOver = "agentline-handed-over";
// The router replica that wrote a jobs.progress record (it skips its own when reading back).
inline constexpr std::string_view kOrigin = "agentline-origin";
// On a DLQ record whose value was cut to kMaxDeadLetterValueBytes (dead_letter.h).
inline constexpr std::string_view kValueTruncated = "agentline-value-truncated";
// On a cache.results record: the replica that published it (it skips its own when following).
inline constexpr std::string_view kCacheReplica = "agentline-cache-replica";
}  // namespace agentline::kafka::headers
