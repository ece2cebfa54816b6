#pragma once
// What an HTTP API says about its limits: Retry-After (seconds or an HTTP date), retry-after-ms,
// and the x-ratelimit-* headers of OpenAI and Azure OpenAI.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentline::net {

// What an LLM API said about its limits in one response (OpenAI / Azure OpenAI header names).
struct RateLimitFeedback {
  std::optional<std::chrono::nanoseconds> retry_after;  // Retry-After (seconds or HTTP date) or retry-after-ms
  std::optional<std::int64_t> remaining_requests;
  std::optional<std::int64_t> remaining_tokens;
  std::optional<std::chrono::nanoseconds> reset_requests;  // x-ratelimit-reset-requests: "1s", "6m0s", "20ms"
  std::optional<std::chrono::nanoseconds> reset_tokens;
  std::optional<std::int64_t> limit_requests;  // x-ratelimit-limit-*: the full allowance
  std::optional<std::int64_t> limit_tokens;

  // Header names are matched case-insensitively; unknown headers and unparsable values are
  // ignored (a malformed header must not stop the worker).
  static RateLimitFeedback from_headers(const std::vector<std::pair<std::string, std::string>>& headers);
};

// "1s", "6m0s", "20ms", "1h2m3.5s", or plain seconds ("7", "0.5"). nullopt if unparsable.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);
// Retry-After: delta-seconds or an HTTP-date (relative to the system clock). nullopt if neither.
std::optional<std::chrono::nanoseconds> parse_retry_after(std::string_view text);

}  // namespace agentline::net
