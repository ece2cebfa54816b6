#pragma once
// The planner's half of dev-fix-worker: the prompt that asks a model for a plan (PLAN_TASK) or
// for one file's part of it again (REPLAN_TASK), and the check that turns the model's reply —
// untrusted text — into a plan or into the list of what is wrong with it (docs/planning.md).
//
// A plan, as PLAN_COMPLETED carries it:
//   {"files": [{"path", "description", "language", "depends_on": [paths], "parent"?}],
//    "interface": "notes every file's prompt carries", "items"?: [{"id", "kind", "title", "parent"?}]}
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "prompt.h"

namespace agentline::devfix {

struct PlanLimits {
  int max_files = 50;                  // --plan-max-files; a goal's constraints.max_files may lower it
  std::size_t max_description = 4000;  // characters per file description
  std::size_t max_interface = 16000;   // characters of interface notes
  int max_depends = 50;                // dependencies per file
};

struct PlanCheck {
  nlohmann::json plan;              // normalized, when errors is empty
  std::vector<std::string> errors;  // what a plan-fix prompt tells the model
  bool ok() const { return errors.empty(); }
};

// The JSON value in a model's reply: a fenced block or the text itself, with prose around it;
// the first object (or array) that parses. Null when there is none.
nlohmann::json extract_json(const std::string& reply);

// Reads `reply` as a plan for `task` (a PLAN_TASK, or a REPLAN_TASK whose payload.plan is the
// job's plan and payload.path the file being planned again). Checks, each an error: a JSON
// plan is present; files is a non-empty array within the file limit; every path passes the
// path policy and is unique; every description is present and within its limit; every
// dependency is a path of the plan, not the file itself; no dependency cycle; parents name
// items. A replan must keep its file, may add new files (not existing paths), and is checked
// merged into the job's plan.
PlanCheck check_plan(const std::string& reply, const nlohmann::json& task, const PlanLimits& limits);

// The prompt for a PLAN_TASK (goal, constraints; on a plan-fix attempt the previous reply and
// its errors) or a REPLAN_TASK (the plan, the file, its last content and diagnostics).
Prompt build_plan_prompt(const nlohmann::json& task, const PlanLimits& limits);

// The JSON Schema of a plan reply (files with path, description, language, depends_on;
// interface), at most `max_files` files, as JSON text in that order: what a backend that
// constrains its output is asked for.
std::string plan_reply_schema(int max_files);

// The language a path's extension names ("python", "javascript", ...; "text" if none).
std::string language_of(const std::string& path);

}  // namespace agentline::devfix
