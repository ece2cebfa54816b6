#pragma once
// Review by a model (docs/qa.md): a REVIEW_TASK names a file that passed its checks and the
// reviewers the router's rules chose for it. Each reviewer is one call of the pool (breaker,
// limits, cache); its findings come back as diagnostics {file, line, severity, check:
// "review:<reviewer>", message}. Errors fail the file like any check; warnings travel with it.
#include <string>

#include <nlohmann/json.hpp>

#include "prompt.h"

namespace agentline::devfix {

// The prompt for one reviewer of the task's file (its content, description and job context).
Prompt build_review_prompt(const nlohmann::json& task, const std::string& reviewer, std::size_t context_budget_chars);
// The reply's JSON Schema, as JSON text (properties in the order they should be written).
std::string review_reply_schema();
// The findings in a reviewer's reply, as diagnostics of `path`. A reply without readable
// findings gives one warning saying so (a review that could not be read does not fail a file),
// and sets *readable to false.
nlohmann::json parse_review(const std::string& reply, const std::string& path, const std::string& reviewer,
                            bool* readable = nullptr);

}  // namespace agentline::devfix
