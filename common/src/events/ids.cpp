#include "agentline/events/ids.h"

#include <cstdio>
#include <functional>

namespace agentline::events {

std::string derived_id(std::string_view prefix, std::string_view base, std::string_view suffix) {
  std::string id;
  id.reserve(prefix.size() + base.size() + suffix.size());
  id.append(prefix).append(base).append(suffix);
  if (id.size() <= kMaxIdLength) return id;
  char hash[24];
  std::snprintf(hash, sizeof hash, "~%016zx", std::hash<std::string_view>{}(base));
  const std::size_t keep = kMaxIdLength - prefix.size() - suffix.size() - 17;
  id.assign(prefix).append(base.substr(0, keep)).append(hash).append(suffix);
  return id;
}

}  // namespace agentline::events
