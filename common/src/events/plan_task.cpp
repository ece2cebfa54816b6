#include "agentline/events/plan_task.h"

#include <nlohmann/json.hpp>

#include "agentline/events/ids.h"
#include "agentline/events/timestamps.h"

namespace agentline::events {

nlohmann::json make_plan_task(const std::string& job_id, const std::string& goal, const nlohmann::json& constraints,
                              const std::string& tenant) {
  nlohmann::json task = {{"id", derived_id("plan-", job_id)},
                         {"task_id", derived_id("", job_id, ":plan")},
                         {"job_id", job_id},
                         {"type", "PLAN_TASK"},
                         {"created_at", now_iso8601()},
                         {"payload", {{"goal", goal}}}};
  if (constraints.is_object() && !constraints.empty()) task["payload"]["constraints"] = constraints;
  if (!tenant.empty()) task["payload"]["tenant"] = tenant;
  return task;
}

}  // namespace agentline::events
