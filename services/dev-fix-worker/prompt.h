#pragma once
// Prompts for dev and fix tasks. A fix prompt carries the previous content and the QA
// diagnostics. Context files are compacted (comments and docstrings stripped, blank runs
// collapsed) and cut to a size budget, so large context costs fewer tokens.
#include <string>

#include <nlohmann/json.hpp>

namespace agentline::devfix {

struct Prompt {
  std::string system;
  std::string user;
};

// `context_budget_chars` bounds all context files together (about 4 characters per token).
Prompt build_prompt(const nlohmann::json& task, std::size_t context_budget_chars = 24000);
// Source without comments, docstrings and runs of blank lines, by the path's language.
std::string compact_source(const std::string& path, const std::string& content);

}  // namespace agentline::devfix
