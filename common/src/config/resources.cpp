#include "agentline/config/resources.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace agentline::config::detail {
extern const std::pair<std::string_view, std::string_view> kResources[];
extern const std::size_t kResourceCount;
}  // namespace agentline::config::detail

namespace agentline::config {

std::optional<std::string_view> embedded_resource(std::string_view relative_path) {
  for (std::size_t i = 0; i < detail::kResourceCount; ++i) {
    if (detail::kResources[i].first == relative_path) return detail::kResources[i].second;
  }
  return std::nullopt;
}

std::vector<std::string_view> embedded_resource_names() {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < detail::kResourceCount; ++i) names.push_back(detail::kResources[i].first);
  return names;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace agentline::config
