#include "kafka/commit_metadata.h"

#include <charconv>

namespace agentline::kafka::detail {

namespace {
constexpr std::string_view kPrefix = "agentline-done:1:";
}

std::string encode_finished(std::int64_t committed, const std::vector<std::int64_t>& finished, std::size_t max_bytes) {
  if (finished.empty()) return {};
  std::string out(kPrefix);
  std::size_t i = 0;
  while (i < finished.size()) {
    std::size_t j = i;
    while (j + 1 < finished.size() && finished[j + 1] == finished[j] + 1) ++j;
    std::string range = std::to_string(finished[i] - committed);
    if (j > i) range += "-" + std::to_string(finished[j] - committed);
    if (out.size() + range.size() + 1 > max_bytes) break;
    if (out.size() > kPrefix.size()) out += ',';
    out += range;
    i = j + 1;
  }
  return out.size() > kPrefix.size() ? out : std::string();
}

std::set<std::int64_t> decode_finished(std::int64_t committed, std::string_view metadata) {
  std::set<std::int64_t> out;
  if (!metadata.starts_with(kPrefix)) return out;
  metadata.remove_prefix(kPrefix.size());
  auto number = [&](std::int64_t& n) {
    auto [end, ec] = std::from_chars(metadata.data(), metadata.data() + metadata.size(), n);
    if (ec != std::errc() || n <= 0) return false;
    metadata.remove_prefix(static_cast<std::size_t>(end - metadata.data()));
    return true;
  };
  // More than a member ever holds unfinished behind one record: not ours.
  constexpr std::int64_t kMost = 1 << 20;
  while (!metadata.empty()) {
    std::int64_t first = 0;
    if (!number(first)) return {};
    std::int64_t last = first;
    if (metadata.starts_with('-')) {
      metadata.remove_prefix(1);
      if (!number(last) || last < first) return {};
    }
    if (last - first + static_cast<std::int64_t>(out.size()) >= kMost) return {};
    for (std::int64_t d = first; d <= last; ++d) out.insert(committed + d);
    if (metadata.starts_with(','))
      metadata.remove_prefix(1);
    else if (!metadata.empty())
      return {};
  }
  return out;
}

}  // namespace agentline::kafka::detail
