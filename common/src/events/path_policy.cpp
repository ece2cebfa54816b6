#include "agentline/events/path_policy.h"

namespace agentline::events {

std::optional<std::string> unsafe_path_reason(std::string_view path) {
  if (path.empty()) return "path is empty";
  if (path.size() > 1024) return "path is longer than 1024 bytes";
  if (path.front() == '/') return "path is absolute";
  if (path.size() >= 2 && path[1] == ':') return "path starts with a drive letter";
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return "path contains a control character";
    if (c == '\\') return "path contains a backslash";
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment.empty()) return "path has an empty segment";
    if (segment == "..") return "path escapes its root through '..'";
    if (segment == ".") return "path has a '.' segment";
    // What filesystems refuse (ENAMETOOLONG) is refused here, as bad input, not met later as a
    // failure that looks transient.
    if (segment.size() > 255) return "path has a segment longer than 255 bytes";
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> unsafe_id_reason(std::string_view id) {
  if (id == "." || id == "..") return "an id cannot be '" + std::string(id) + "': it names a folder";
  return std::nullopt;
}

}  // namespace agentline::events
