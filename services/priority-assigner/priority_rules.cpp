#include "priority_rules.h"

#include <fnmatch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "agentline/config/resources.h"

namespace agentline::priority {

// Its embedded files (agentline_embed in CMakeLists.txt).
std::optional<std::string_view> embedded_file(std::string_view path);

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::vector<std::string> lower_list(const nlohmann::json& rule, const char* key) {
  std::vector<std::string> out;
  if (!rule.contains(key)) return out;
  for (const auto& v : rule.at(key)) out.push_back(lower(v.get<std::string>()));
  return out;
}

}  // namespace

std::string_view to_string(Priority p) {
  switch (p) {
    case Priority::kCritical:
      return "critical";
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kLow:
      return "low";
  }
  return "normal";
}

Priority priority_from_string(std::string_view text) {
  std::string t = lower(text);
  if (t == "critical") return Priority::kCritical;
  if (t == "high") return Priority::kHigh;
  if (t == "normal") return Priority::kNormal;
  if (t == "low") return Priority::kLow;
  throw std::invalid_argument("unknown priority '" + std::string(text) + "'");
}

PriorityRules PriorityRules::parse(const std::string& json_text) {
  PriorityRules rules;
  try {
    auto doc = nlohmann::json::parse(json_text);
    for (const auto& [key, value] : doc.items()) {
      if (key != "description" && key != "default" && key != "rules") {
        throw std::invalid_argument("priority rules: unknown key '" + key + "'");
      }
    }
    rules.default_ = priority_from_string(doc.value("default", "normal"));
    for (const auto& r : doc.at("rules")) {
      for (const auto& [key, value] : r.items()) {
        static const std::set<std::string> known{"name", "priority", "directories", "filenames", "keywords"};
        if (!known.count(key)) throw std::invalid_argument("priority rule: unknown key '" + key + "'");
      }
      Rule rule{r.at("name").get<std::string>(), priority_from_string(r.at("priority").get<std::string>()),
                lower_list(r, "directories"), lower_list(r, "filenames"), lower_list(r, "keywords")};
      if (rule.directories.empty() && rule.filenames.empty() && rule.keywords.empty()) {
        throw std::invalid_argument("priority rule '" + rule.name + "' matches nothing");
      }
      rules.rules_.push_back(std::move(rule));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("priority rules: ") + e.what());
  }
  return rules;
}

PriorityRules PriorityRules::load(const std::string& path) {
  if (path.empty()) return parse(std::string(*embedded_file("config/priority-rules.json")));
  return parse(config::read_file(path));
}

Decision PriorityRules::classify(std::string_view path, std::string_view description) const {
  const std::string p = lower(path);
  const std::string desc = lower(description);
  std::vector<std::string> dirs;
  std::string filename = p;
  for (std::size_t start = 0;;) {
    std::size_t slash = p.find('/', start);
    if (slash == std::string::npos) {
      filename = p.substr(start);
      break;
    }
    dirs.push_back(p.substr(start, slash - start));
    start = slash + 1;
  }
  for (const auto& rule : rules_) {
    bool hit = std::any_of(rule.directories.begin(), rule.directories.end(),
                           [&](const std::string& d) { return std::find(dirs.begin(), dirs.end(), d) != dirs.end(); });
    hit = hit || std::any_of(rule.filenames.begin(), rule.filenames.end(), [&](const std::string& glob) {
            return ::fnmatch(glob.c_str(), filename.c_str(), 0) == 0;
          });
    hit = hit || std::any_of(rule.keywords.begin(), rule.keywords.end(),
                             [&](const std::string& k) { return desc.find(k) != std::string::npos; });
    if (hit) return {rule.priority, rule.name};
  }
  return {default_, "default"};
}

Decision raise_for_dependants(Decision decision, int dependants) {
  if (dependants <= 0) return decision;
  const int levels = dependants >= kCriticalPathMany ? 2 : 1;
  const int raised = std::max(0, static_cast<int>(decision.priority) - levels);
  if (raised == static_cast<int>(decision.priority)) return decision;
  return {static_cast<Priority>(raised), decision.rule + "+critical_path"};
}

}  // namespace agentline::priority
