#pragma once
// Retry-tier and dead-letter records: which topic a failed record goes to next, and the
// headers it carries there. Header names are documented in docs/headers.md.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agentline/kafka/failure.h"
#include "agentline/kafka/record.h"
#include "agentline/kafka/topic_catalog.h"

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

// Bounds that keep a DLQ record readable whatever the input looked like.
inline constexpr std::size_t kMaxErrorMessageBytes = 1024;
inline constexpr std::size_t kMaxCopiedHeaders = 32;
inline constexpr std::size_t kMaxCopiedHeaderBytes = 8192;
// A DLQ record keeps at most this much of the failed record's value (a value near the broker's
// 1 MB limit plus the DLQ headers would not fit); a cut value is marked with kValueTruncated.
inline constexpr std::size_t kMaxDeadLetterValueBytes = 900 * 1024;
inline constexpr std::string_view kValueTruncated = "agentline-value-truncated";
// An inbound record with more headers, or more header bytes, is bad input ("header_limit"):
// no handler sees it.
inline constexpr std::size_t kMaxInboundHeaders = 64;
inline constexpr std::size_t kMaxInboundHeaderBytes = 64 * 1024;
}  // namespace agentline::kafka::headers

namespace agentline::kafka {

// Cuts `text` to at most `max_bytes` without splitting a UTF-8 sequence, replacing invalid
// bytes and control characters, and marks the cut with "...".
std::string bounded_message(std::string_view text, std::size_t max_bytes);

// Why a record's headers are over the inbound limits, or empty when they are not.
std::string header_limit_violation(const InboundRecord& record);

// The number of failed attempts a record already carries (0 for a first delivery).
int attempt_of(const InboundRecord& record);
// The due time (ms since epoch) of a retry-tier record, 0 when it has none.
std::int64_t retry_due_ms(const InboundRecord& record);

// Decides where a failed record goes and builds that record.
class FailureRouter {
 public:
  FailureRouter(std::string service, std::string group, std::vector<RetryTier> tiers, std::string dlq_topic);

  // The record to produce for `record` failing with `failure` at `now_ms`: the next retry
  // tier for a transient failure with tiers left, otherwise the DLQ.
  OutgoingRecord route(const InboundRecord& record, const Failure& failure, std::int64_t now_ms) const;
  bool is_retry_topic(std::string_view topic) const;
  const std::vector<RetryTier>& tiers() const { return tiers_; }
  const std::string& dlq_topic() const { return dlq_topic_; }

 private:
  std::string service_;
  std::string group_;
  std::vector<RetryTier> tiers_;
  std::string dlq_topic_;
};

}  // namespace agentline::kafka
