// qa-worker: qa.requests (FILE_COMPLETED, JOB_CHECK_REQUESTED) -> events (QA_PASSED / QA_FAILED,
// JOB_QA_PASSED / JOB_QA_FAILED).
#include <algorithm>
#include <cmath>

#include "agentline/observability/health.h"
#include "agentline/service/service_host.h"
#include "qa_options.h"
#include "qa_worker.h"

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("qa-worker", "Checks generated files by type, in a sandbox.", {"qa.requests"});
  qa::QaOptions options;
  options.bind(host.options());
  // Checks (and job checks) are processes that compute: two per CPU of quota (one waits on its
  // start or output while the other runs), no more than the memory holds at the sandbox's limit.
  host.set_in_flight_rule([&](const config::ContainerResources& r) {
    const auto by_memory = r.memory_bytes / std::max<std::int64_t>(options.limits.memory_bytes, 1);
    return static_cast<int>(std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(2 * r.cpus)), 1,
                                                     std::max<std::int64_t>(by_memory, 1)));
  });
  if (auto exit_code = host.configure(argc, argv, [&] { options.load(); })) return *exit_code;
  qa::Sandbox sandbox(options.mode(), options.limits);
  qa::Sandbox job_sandbox(options.mode(), options.job_limits);
  // A sandbox that does not work: not ready, and every record waits (nothing is lost); checks
  // never run unconfined unless --sandbox=none says so.
  const std::string sandbox_problem = qa::prepare_sandbox(options, sandbox);
  if (!sandbox_problem.empty()) host.health()->set_condition("sandbox", false, sandbox_problem);
  qa::QaWorker worker(host.catalog(), std::move(options.checks), std::move(options.job_checks), sandbox, job_sandbox,
                      *host.registry());
  worker.set_sandbox_problem(sandbox_problem);
  return host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return worker.handle(record, out); });
}
