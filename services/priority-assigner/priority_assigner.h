#pragma once
// priority-assigner: reads tasks.submitted, validates each task, and routes it to
// tasks.fix (fix tasks, always first), to the priority named in the task, or to the priority
// its path and description earn under the rules. Invalid tasks are bad input (DLQ).
#include <map>
#include <memory>
#include <optional>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/topic_catalog.h"
#include "priority_rules.h"

namespace prometheus {
class Registry;
class Counter;
}  // namespace prometheus

namespace agentline::priority {

class PriorityAssigner {
 public:
  PriorityAssigner(const kafka::TopicCatalog& catalog, PriorityRules rules, prometheus::Registry& registry);

  // The handler for the consumer runtime. Thread-safe.
  std::optional<kafka::Failure> handle(const kafka::InboundRecord& record, kafka::Emitter& out) const;

 private:
  events::MessageValidator validator_;
  PriorityRules rules_;
  std::string fix_topic_;
  std::map<Priority, std::string> topics_;
  std::map<Priority, prometheus::Counter*> assigned_;
  prometheus::Counter* fixes_;
  prometheus::Counter* explicit_;
};

}  // namespace agentline::priority
