#include "review_rules.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace agentline::router {

const char* ReviewRules::default_json() {
  return R"({
  "reviewers": {
    "security": {
      "paths": ["(^|/)(auth|login|session|password|token|crypto|security|permissions?)[^/]*$",
                "(^|/)(api|server|handlers?|views?|routes?)\\.[a-z]+$"],
      "contains": ["input(", "request.", "sys.argv", "subprocess", "os.system", "eval(", "exec(", "pickle.load",
                   "yaml.load(", "SELECT ", "INSERT INTO", "strcpy(", "sprintf(", "gets(", "system(", "innerHTML",
                   "child_process"]
    },
    "correctness": {
      "dependant_paths": ["(^|/)test_[^/]*\\.py$", "_test\\.[a-z]+$", "\\.test\\.[jt]s$"]
    }
  }
})";
}

ReviewRules ReviewRules::parse(const std::string& json_text) {
  auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("reviewers") || !doc["reviewers"].is_object())
    throw std::invalid_argument("review rules: expected {\"reviewers\": {...}}");
  for (const auto& [key, value] : doc.items()) {
    if (key != "reviewers") throw std::invalid_argument("review rules: unknown key '" + key + "'");
  }
  ReviewRules rules;
  for (const auto& [name, spec] : doc["reviewers"].items()) {
    if (name.empty() || name.size() > 64 || !spec.is_object())
      throw std::invalid_argument("review rules: reviewer '" + name + "' must map to an object");
    Reviewer r;
    r.name = name;
    for (const auto& [key, list] : spec.items()) {
      if (!list.is_array()) throw std::invalid_argument("review rules: " + name + "." + key + " must be a list");
      for (const auto& item : list) {
        if (!item.is_string()) throw std::invalid_argument("review rules: " + name + "." + key + " holds strings");
        const std::string text = item;
        try {
          if (key == "paths") {
            r.paths.emplace_back(text, std::regex::ECMAScript | std::regex::icase);
          } else if (key == "dependant_paths") {
            r.dependant_paths.emplace_back(text, std::regex::ECMAScript | std::regex::icase);
          } else if (key == "contains") {
            r.contains.push_back(text);
          } else {
            throw std::invalid_argument("review rules: " + name + ": unknown key '" + key + "'");
          }
        } catch (const std::regex_error& e) {
          throw std::invalid_argument("review rules: " + name + "." + key + ": bad regex '" + text + "': " + e.what());
        }
      }
    }
    rules.reviewers_.push_back(std::move(r));
  }
  return rules;
}

ReviewRules ReviewRules::load(const std::string& path) {
  if (path.empty()) return parse(default_json());
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("review rules: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str());
}

std::vector<std::string> ReviewRules::reviewers_for(const std::string& path, const std::string& content,
                                                    const std::vector<std::string>& dependants) const {
  std::vector<std::string> out;
  for (const auto& r : reviewers_) {
    bool match = false;
    for (const auto& re : r.paths) match = match || std::regex_search(path, re);
    for (const auto& text : r.contains) match = match || content.find(text) != std::string::npos;
    for (const auto& re : r.dependant_paths) {
      for (const auto& d : dependants) match = match || std::regex_search(d, re);
    }
    if (match) out.push_back(r.name);
  }
  return out;
}

}  // namespace agentline::router
