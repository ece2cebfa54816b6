#include "agentline/kafka/dead_letter.h"

#include <charconv>

namespace agentline::kafka {

namespace h = headers;

namespace {

std::int64_t to_int(std::optional<std::string_view> text, std::int64_t fallback) {
  if (!text) return fallback;
  std::int64_t value = fallback;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return (ec == std::errc() && ptr == text->data() + text->size()) ? value : fallback;
}

// Length of the valid UTF-8 sequence starting at s[i], 0 if invalid.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return len;
}

bool is_internal(std::string_view key) {
  return key.rfind("agentline-", 0) == 0 && key != h::kSchema && key != h::kReplayCount && key != h::kReplayedFrom;
}

}  // namespace

std::string bounded_message(std::string_view text, std::size_t max_bytes) {
  std::string clean;
  clean.reserve(std::min(text.size(), max_bytes + 4));
  for (std::size_t i = 0; i < text.size() && clean.size() <= max_bytes + 4;) {
    std::size_t len = utf8_sequence_length(text, i);
    auto c = static_cast<unsigned char>(text[i]);
    if (len == 0) {
      clean += '?';  // invalid UTF-8 byte
      len = 1;
    } else if (len == 1 && (c < 0x20 || c == 0x7f)) {
      clean += ' ';  // control characters would break one-line tools
    } else {
      clean.append(text.substr(i, len));
    }
    i += len;
  }
  if (clean.size() <= max_bytes) return clean;
  std::size_t cut = max_bytes >= 3 ? max_bytes - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xc0) == 0x80) --cut;
  clean.resize(cut);
  return clean + "...";
}

std::string header_limit_violation(const InboundRecord& record) {
  if (record.headers.size() > h::kMaxInboundHeaders) {
    return std::to_string(record.headers.size()) + " headers (at most " + std::to_string(h::kMaxInboundHeaders) +
           " are accepted)";
  }
  std::size_t bytes = 0;
  for (const auto& header : record.headers) bytes += header.key.size() + header.value.size();
  if (bytes > h::kMaxInboundHeaderBytes) {
    return std::to_string(bytes) + " bytes of headers (at most " + std::to_string(h::kMaxInboundHeaderBytes) +
           " are accepted)";
  }
  return {};
}

int attempt_of(const InboundRecord& record) { return static_cast<int>(to_int(record.header(h::kAttempt), 0)); }

std::int64_t retry_due_ms(const InboundRecord& record) { return to_int(record.header(h::kRetryDue), 0); }

FailureRouter::FailureRouter(std::string service, std::string group, std::vector<RetryTier> tiers,
                             std::string dlq_topic)
    : service_(std::move(service)),
      group_(std::move(group)),
      tiers_(std::move(tiers)),
      dlq_topic_(std::move(dlq_topic)) {}

bool FailureRouter::is_retry_topic(std::string_view topic) const {
  for (const auto& t : tiers_) {
    if (t.topic == topic) return true;
  }
  return false;
}

OutgoingRecord FailureRouter::route(const InboundRecord& record, const Failure& failure, std::int64_t now_ms) const {
  const int attempt = attempt_of(record) + 1;  // this failure included
  const bool from_retry_tier = is_retry_topic(record.topic);

  OutgoingRecord out;
  out.key = record.key.value_or("");
  out.value = record.value;

  // Copy the record's own headers (traceparent, content type, ...), bounded, without the
  // transport headers this function owns.
  std::size_t copied_bytes = 0;
  for (const auto& header : record.headers) {
    if (is_internal(header.key)) continue;
    if (out.headers.size() >= h::kMaxCopiedHeaders) break;
    copied_bytes += header.key.size() + header.value.size();
    if (copied_bytes > h::kMaxCopiedHeaderBytes) break;
    out.headers.push_back(header);
  }

  // Where the record first came from. A retry-tier record carries it already.
  if (from_retry_tier) {
    for (auto key : {h::kOriginalTopic, h::kOriginalPartition, h::kOriginalOffset, h::kOriginalTimestamp}) {
      if (auto value = record.header(key)) out.headers.push_back({std::string(key), bounded_message(*value, 256)});
    }
  } else {
    out.headers.push_back({std::string(h::kOriginalTopic), record.topic});
    out.headers.push_back({std::string(h::kOriginalPartition), std::to_string(record.partition)});
    out.headers.push_back({std::string(h::kOriginalOffset), std::to_string(record.offset)});
    out.headers.push_back({std::string(h::kOriginalTimestamp), std::to_string(record.timestamp_ms)});
  }
  out.headers.push_back({std::string(h::kConsumerGroup), group_});
  out.headers.push_back({std::string(h::kFailedService), service_});
  out.headers.push_back({std::string(h::kErrorClass), bounded_message(failure.error_class, 128)});
  out.headers.push_back({std::string(h::kErrorMessage), bounded_message(failure.message, h::kMaxErrorMessageBytes)});
  out.headers.push_back({std::string(h::kAttempt), std::to_string(attempt)});

  const bool retry = failure.kind == FailureKind::kTransient && attempt <= static_cast<int>(tiers_.size());
  if (retry) {
    const RetryTier& tier = tiers_[static_cast<std::size_t>(attempt - 1)];
    out.topic = tier.topic;
    out.headers.push_back({std::string(h::kRetryTier), std::to_string(tier.attempt)});
    // now_ms is the failure's millisecond, truncated: +1 makes the due time the first whole
    // millisecond by which the full delay has surely passed, so no tier ever runs a record
    // early, not even by a fraction of a millisecond (a test saw 299.5 ms for a 300 ms tier).
    out.headers.push_back({std::string(h::kRetryDue), std::to_string(now_ms + tier.delay.count() + 1)});
  } else {
    out.topic = dlq_topic_;
    out.headers.push_back({std::string(h::kDeadLetteredAt), std::to_string(now_ms)});
    if (out.value.size() > h::kMaxDeadLetterValueBytes) {
      out.headers.push_back({std::string(h::kValueTruncated), std::to_string(out.value.size())});
      out.value.resize(h::kMaxDeadLetterValueBytes);
    }
  }
  return out;
}

}  // namespace agentline::kafka
