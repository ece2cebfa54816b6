// priority-assigner: tasks.submitted -> tasks.{fix,critical,high,normal,low}.
#include "agentline/service/service_host.h"
#include "priority_assigner.h"

int main(int argc, char** argv) {
  agentline::service::ServiceHost host(
      "priority-assigner", "Routes submitted tasks to their priority topics (fix tasks first).", {"tasks.submitted"});
  std::string rules_file;
  host.options().add("rules", &rules_file, "Priority rule file (JSON); empty: the built-in default rules");
  std::optional<agentline::priority::PriorityRules> rules;
  if (auto exit_code =
          host.configure(argc, argv, [&] { rules = agentline::priority::PriorityRules::load(rules_file); }))
    return *exit_code;
  agentline::priority::PriorityAssigner assigner(host.catalog(), std::move(*rules), *host.registry());
  return host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter& out) {
    return assigner.handle(record, out);
  });
}
