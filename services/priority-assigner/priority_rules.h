#pragma once
// The priority rules of priority-assigner: an ordered list of path/keyword rules, first
// match wins (config/priority-rules.json is the default). Immutable after parse; thread-safe.
#include <string>
#include <string_view>
#include <vector>

namespace agentline::priority {

enum class Priority { kCritical, kHigh, kNormal, kLow };

std::string_view to_string(Priority p);
// Throws std::invalid_argument for anything but critical|high|normal|low.
Priority priority_from_string(std::string_view text);

struct Decision {
  Priority priority;
  std::string rule;  // the rule's name, or "default"
};

// The critical path: a planned file that others wait on goes ahead of its rule's priority, one
// level when any file depends on it, two when `dependants` is at least kCriticalPathMany
// (never above critical). The rule name says so: "<rule>+critical_path".
inline constexpr int kCriticalPathMany = 3;
Decision raise_for_dependants(Decision decision, int dependants);

class PriorityRules {
 public:
  // Parses the rule-file JSON; throws std::invalid_argument with the reason.
  static PriorityRules parse(const std::string& json_text);
  // `path` empty: the default rules built into the binary.
  static PriorityRules load(const std::string& path);

  Decision classify(std::string_view path, std::string_view description) const;

 private:
  struct Rule {
    std::string name;
    Priority priority;
    std::vector<std::string> directories;  // lower-case
    std::vector<std::string> filenames;    // lower-case globs
    std::vector<std::string> keywords;     // lower-case
  };
  std::vector<Rule> rules_;
  Priority default_ = Priority::kNormal;
};

}  // namespace agentline::priority
