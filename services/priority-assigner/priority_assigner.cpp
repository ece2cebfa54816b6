#include "priority_assigner.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>

#include "agentline/events/record.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::priority {

PriorityAssigner::PriorityAssigner(const kafka::TopicCatalog& catalog, PriorityRules rules,
                                   prometheus::Registry& registry)
    : rules_(std::move(rules)), fix_topic_(catalog.topic("tasks.fix")) {
  auto& family = observability::counter(registry, "agentline_tasks_prioritized_total",
                                        "Tasks routed by priority-assigner, by priority (fix = tasks.fix)");
  for (auto p : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    topics_[p] = catalog.topic("tasks." + std::string(to_string(p)));
    assigned_[p] = &family.Add({{"priority", std::string(to_string(p))}});
  }
  fixes_ = &family.Add({{"priority", "fix"}});
  explicit_ = &observability::counter(registry, "agentline_tasks_explicit_priority_total",
                                      "Tasks whose own payload.priority decided their topic")
                   .Add({});
}

std::optional<kafka::Failure> PriorityAssigner::handle(const kafka::InboundRecord& record, kafka::Emitter& out) const {
  nlohmann::json task;
  if (auto failure = events::MessageValidator::parse(record.value, task)) return failure;
  if (auto failure = validator_.validate_task(task)) return failure;

  auto& payload = task["payload"];
  std::string topic;
  const std::string type = task["type"];
  if (type == "REVIEW_TASK") {
    // The router's own (docs/qa.md): from outside it would pass a file without its checks.
    return kafka::Failure::bad_input("internal_task_type",
                                     "REVIEW_TASK is the router's; submit DEV_TASK, FIX_TASK or PLAN_TASK");
  }
  if (type == "FIX_TASK" || type == "REPLAN_TASK") {
    topic = fix_topic_;
    fixes_->Increment();
  } else {
    Decision decision;
    if (payload.contains("priority")) {
      decision = {priority_from_string(payload["priority"].get<std::string>()), "explicit"};
      explicit_->Increment();
    } else if (type == "PLAN_TASK") {
      // Every file of the job waits on its plan.
      decision = {Priority::kCritical, "plan"};
      payload["priority"] = to_string(decision.priority);
    } else {
      decision = raise_for_dependants(
          rules_.classify(payload["path"].get<std::string>(), payload["description"].get<std::string>()),
          payload.value("dependants", 0));
      payload["priority"] = to_string(decision.priority);
    }
    payload["priority_rule"] = decision.rule;
    topic = topics_.at(decision.priority);
    assigned_.at(decision.priority)->Increment();
  }
  out.emit(events::make_record(
      std::move(topic), task["task_id"].get<std::string>(), task, &record,
      type == "PLAN_TASK" || type == "REPLAN_TASK" ? events::kPlanTaskSchemaId : events::kTaskSchemaId));
  return std::nullopt;
}

}  // namespace agentline::priority
