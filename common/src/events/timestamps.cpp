#include "agentline/events/timestamps.h"

#include <chrono>
#include <ctime>

namespace agentline::events {

std::string iso8601(std::int64_t ms_since_epoch) {
  const std::time_t t = static_cast<std::time_t>(ms_since_epoch / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string now_iso8601() { return iso8601(now_ms()); }

}  // namespace agentline::events
