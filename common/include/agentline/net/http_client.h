#pragma once
// The one HTTP client (libcurl) for every outbound call: delivery targets, webhooks, chat
// digests, the LLM API, the CLI's event streams. Thread-safe: each call uses its own handle.
// Never throws for network trouble: a transport failure is an HttpResponse with status 0 and
// `error` set.
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentline::net {

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds connect_timeout{3000};
  // A stream (Server-Sent Events): each piece of the body as it arrives, instead of `body`;
  // returning false ends the call (then `stopped` is set and it is not an error).
  std::function<bool(std::string_view)> on_body;
};

struct HttpResponse {
  long status = 0;  // 0: no HTTP answer (see error, timed_out)
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; the last value wins
  std::string error;
  bool timed_out = false;
  bool stopped = false;  // on_body ended the call

  bool ok() const { return status >= 200 && status < 300; }
  std::optional<std::string> header(const std::string& lower_name) const;
};

HttpResponse http_call(const HttpRequest& request);
// `text` percent-encoded for a URL path segment or query value.
std::string url_escape(std::string_view text);

// Transient answers worth another attempt: no answer, 408, 425, 429 and 5xx.
bool is_retryable(const HttpResponse& response);
// Retry-After (seconds or an HTTP date) or retry-after-ms, if the answer carries one.
std::optional<std::chrono::milliseconds> retry_after(const HttpResponse& response);

}  // namespace agentline::net
