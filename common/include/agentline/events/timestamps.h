#pragma once
// Wall-clock times as messages carry them: milliseconds since the epoch, and ISO 8601 UTC
// with second precision ("2026-11-22T10:00:00Z", the schemas' created_at form).
#include <cstdint>
#include <string>

#include "agentline/resilience/clock.h"

namespace agentline::events {

using resilience::now_ms;
std::string iso8601(std::int64_t ms_since_epoch);
std::string now_iso8601();

}  // namespace agentline::events
