#pragma once
// Files compiled into every binary (schemas/, topics/catalog.json, config/priority-rules.json),
// so an installed binary runs without a source tree.
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
