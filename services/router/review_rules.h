#pragma once
// Which model reviewers a file gets (docs/qa.md, "Review by a model"): only the relevant ones
// run, the seeds' classifier-based selection. Off unless the router is given --reviews (the
// built-in table) or --review-rules FILE:
//   {"reviewers": {"security": {"paths": ["<regex>", ...], "contains": ["<text>", ...]},
//                  "correctness": {"dependant_paths": ["<regex>"]}}}
// A reviewer runs on a file when its path matches one of `paths`, its content holds one of
// `contains` (plain text: a regex over 256 KiB of untrusted content is not safe), or a file of
// its plan that depends on it matches one of `dependant_paths` (a test of it). Unknown keys and
// bad regexes are errors (std::invalid_argument).
#include <regex>
#include <string>
#include <vector>

namespace agentline::router {

class ReviewRules {
 public:
  static const char* default_json();
  static ReviewRules parse(const std::string& json_text);
  // The built-in table when `path` is empty.
  static ReviewRules load(const std::string& path);

  // The reviewers for one file, by name.
  std::vector<std::string> reviewers_for(const std::string& path, const std::string& content,
                                         const std::vector<std::string>& dependants) const;
  std::size_t size() const { return reviewers_.size(); }

 private:
  struct Reviewer {
    std::string name;
    std::vector<std::regex> paths;
    std::vector<std::string> contains;
    std::vector<std::regex> dependant_paths;
  };
  std::vector<Reviewer> reviewers_;
};

}  // namespace agentline::router
