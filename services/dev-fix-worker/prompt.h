#pragma once
// Prompts for dev and fix tasks: the one function that decides what a model is told about a
// file (docs/planning.md). Always: the file's path, language and description; for a fix, the
// previous content and the QA diagnostics. Then, for a file of a planned job, its context
// within `context_budget_chars` (about 4 characters per token; --context-budget-tokens),
// filled by rank until the budget runs out, each part cut with a visible note:
//   1. the job's goal
//   2. the content of the files it depends on (relation "dependency"), and which dependencies
//      could not be completed
//   3. the job's interface notes
//   4. the plan's file list, one line each, with what each file imports
//   5. the content of other context files, the files that import it first ("dependant")
// So what is cut first is other files' content, then the file list, then the interface notes.
// Context files are compacted (comments and docstrings stripped, blank runs collapsed) first.
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
