#pragma once
// Files compiled into every binary (schemas/, topics/catalog.json), so an installed binary runs
// without a source tree. A service's own files (the gateway's page and API document, the
// default priority rules, the job-check driver) are embedded into its library alone, each
// looked up by its own embedded_file() (cmake/Embed.cmake).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentline::config {

// The embedded copy of `relative_path` (as in the repository, e.g. "schemas/task.json").
std::optional<std::string_view> embedded_resource(std::string_view relative_path);
std::vector<std::string_view> embedded_resource_names();

// Reads a whole file; throws std::runtime_error naming the path on failure.
std::string read_file(const std::string& path);

}  // namespace agentline::config
