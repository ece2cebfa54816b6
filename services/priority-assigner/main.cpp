// priority-assigner: tasks.submitted -> tasks.{fix,critical,high,normal,low}.
#include "agentline/service/service_host.h"
#include "priority_assigner.h"

#include <iostream>

int main(int argc, char** argv) {
  agentline::service::ServiceHost host(
      "priority-assigner", "Routes submitted tasks to their priority topics (fix tasks first).", {"tasks.submitted"});
  std::string rules_file;
  host.options().add("rules", &rules_file, "Priority rule file (JSON); empty: the built-in default rules");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;

  std::optional<agentline::priority::PriorityRules> rules;
  try {
    rules = agentline::priority::PriorityRules::load(rules_file);
  } catch (const std::exception& e) {
    std::cerr << "priority-assigner: configuration error: " << e.what() << "\n";
    return 2;
  }
  agentline::priority::PriorityAssigner assigner(host.catalog(), std::move(*rules), *host.registry());
  return host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter& out) {
    return assigner.handle(record, out);
  });
}
