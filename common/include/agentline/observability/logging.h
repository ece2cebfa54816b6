#pragma once
// JSON logs on stderr, one object per line: {"ts","level","service","msg"}.
#include <string_view>

namespace agentline::observability {

// Installs the JSON logger as spdlog's default. `level` is trace|debug|info|warn|error.
void init_logging(std::string_view service, std::string_view level);

}  // namespace agentline::observability
