#include "agentline/net/rate_limit_headers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

namespace agentline::net {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<std::int64_t> parse_count(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double total_ns = 0;
  bool any_unit = false;
  while (!text.empty()) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return std::nullopt;
    double value = 0;
    try {
      value = std::stod(std::string(text.substr(0, i)));
    } catch (...) {
      return std::nullopt;
    }
    text.remove_prefix(i);
    std::size_t u = 0;
    while (u < text.size() && std::isalpha(static_cast<unsigned char>(text[u]))) ++u;
    const std::string unit = lower(text.substr(0, u));
    text.remove_prefix(u);
    double scale = 0;
    if (unit.empty()) {
      if (any_unit || !text.empty()) return std::nullopt;
      scale = 1e9;  // plain seconds
    } else if (unit == "h") {
      scale = 3600e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "us") {
      scale = 1e3;
    } else if (unit == "ns") {
      scale = 1;
    } else {
      return std::nullopt;
    }
    any_unit = any_unit || !unit.empty();
    total_ns += value * scale;
  }
  if (total_ns > 1e9 * 86400 * 7) return std::nullopt;  // a week: not a sane limit reset
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total_ns)};
}

std::optional<std::chrono::nanoseconds> parse_retry_after(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text.front()))) {
    auto d = parse_go_duration(text);
    if (d && text.find_first_not_of("0123456789.") == std::string_view::npos) return d;
    return std::nullopt;
  }
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  const std::time_t when = timegm(&tm);
  const auto delta = std::chrono::system_clock::from_time_t(when) - std::chrono::system_clock::now();
  return std::max(std::chrono::nanoseconds{0}, std::chrono::duration_cast<std::chrono::nanoseconds>(delta));
}

RateLimitFeedback RateLimitFeedback::from_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  RateLimitFeedback f;
  for (const auto& [raw_name, value] : headers) {
    const std::string name = lower(trim(raw_name));
    if (name == "retry-after-ms") {
      if (auto ms = parse_count(value)) f.retry_after = std::chrono::milliseconds(*ms);
    } else if (name == "retry-after") {
      if (!f.retry_after) f.retry_after = parse_retry_after(value);
    } else if (name == "x-ratelimit-limit-requests") {
      f.limit_requests = parse_count(value);
    } else if (name == "x-ratelimit-limit-tokens") {
      f.limit_tokens = parse_count(value);
    } else if (name == "x-ratelimit-remaining-requests") {
      f.remaining_requests = parse_count(value);
    } else if (name == "x-ratelimit-remaining-tokens") {
      f.remaining_tokens = parse_count(value);
    } else if (name == "x-ratelimit-reset-requests") {
      f.reset_requests = parse_go_duration(value);
    } else if (name == "x-ratelimit-reset-tokens") {
      f.reset_tokens = parse_go_duration(value);
    }
  }
  return f;
}

}  // namespace agentline::net
