#pragma once
// Retry-tier and dead-letter records: which topic a failed record goes to next, and the
// headers it carries there. Header names are documented in docs/headers.md.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agentline/kafka/failure.h"
#include "agentline/kafka/headers.h"
#include "agentline/kafka/record.h"
#include "agentline/kafka/topic_catalog.h"

namespace agentline::kafka::headers {
// Bounds that keep a DLQ record readable whatever the input looked like.
inline constexpr std::size_t kMaxErrorMessageBytes = 1024;
inline constexpr std::size_t kMaxCopiedHeaders = 32;
inline constexpr std::size_t kMaxCopiedHeaderBytes = 8192;
// A DLQ record keeps at most this much of the failed record's value (a value near the broker's
// 1 MB limit plus the DLQ headers would not fit); a cut value is marked with kValueTruncated.
inline constexpr std::size_t kMaxDeadLetterValueBytes = 900 * 1024;
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
