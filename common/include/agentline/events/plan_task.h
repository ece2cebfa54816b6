#pragma once
// The PLAN_TASK a goal becomes (schemas/plan_task.json, docs/planning.md): what the gateway's
// POST /api/jobs {"goal"} and `agentline submit --goal` publish, and what any Kafka producer may
// publish to tasks.submitted by hand. Its task id is <job_id>:plan, so a goal submitted twice for
// one job is one plan downstream.
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace agentline::events {

// `constraints` (an object: language, max_files, layout, ...) and `tenant` are left out when
// null or empty. The result still has to pass MessageValidator::validate_task.
nlohmann::json make_plan_task(const std::string& job_id, const std::string& goal, const nlohmann::json& constraints,
                              const std::string& tenant);

}  // namespace agentline::events
