#include "agentline/config/resources.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace agentline::config::detail {
// Generated (agentline_embed in common/CMakeLists.txt).
std::optional<std::string_view> embedded_file(std::string_view path);
std::vector<std::string_view> embedded_file_names();
}  // namespace agentline::config::detail

namespace agentline::config {

std::optional<std::string_view> embedded_resource(std::string_view relative_path) {
  return detail::embedded_file(relative_path);
}

std::vector<std::string_view> embedded_resource_names() { return detail::embedded_file_names(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace agentline::config
