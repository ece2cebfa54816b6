#include "agentline/kafka/record.h"

#include <algorithm>

namespace agentline::kafka {

std::optional<std::string_view> find_header(const Headers& headers, std::string_view key) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->key == key) return std::string_view(it->value);
  }
  return std::nullopt;
}

void set_header(Headers& headers, std::string_view key, std::string_view value) {
  std::erase_if(headers, [&](const Header& h) { return h.key == key; });
  headers.push_back({std::string(key), std::string(value)});
}

}  // namespace agentline::kafka
