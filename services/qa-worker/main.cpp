// qa-worker: qa.requests (FILE_COMPLETED) -> events (QA_PASSED / QA_FAILED).
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "agentline/observability/health.h"
#include "agentline/service/service_host.h"
#include "qa_worker.h"

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("qa-worker", "Checks generated files by type, in a sandbox.", {"qa.requests"});
  std::string sandbox_mode = "bwrap";
  std::string command_table;
  qa::SandboxLimits limits;
  int wall_ms = static_cast<int>(limits.wall.count());
  int memory_mb = static_cast<int>(limits.memory_bytes >> 20);
  auto& o = host.options();
  o.add("sandbox", &sandbox_mode,
        "bwrap (bubblewrap), or none: run checks unconfined (UNSAFE: generated code runs as the worker)");
  o.add("checks", &command_table, "Command table (JSON) adding or replacing checks by extension");
  o.add("check-cpu-seconds", &limits.cpu_seconds, "Sandbox: CPU seconds per check");
  o.add("check-memory-mb", &memory_mb, "Sandbox: address space per check (MiB)");
  o.add("check-processes", &limits.processes, "Sandbox: processes (RLIMIT_NPROC of the sandbox user)");
  o.add("check-wall-ms", &wall_ms, "Sandbox: wall-clock time per check");
  o.add("sandbox-uid-base", &limits.uid_base,
        "Sandbox, as root: checks run as uids from this one up (one per running check)");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;
  limits.wall = std::chrono::milliseconds(wall_ms);
  limits.memory_bytes = static_cast<std::int64_t>(memory_mb) << 20;

  qa::CheckTable checks = qa::CheckTable::defaults();
  if (!command_table.empty()) {
    std::ifstream in(command_table);
    std::stringstream text;
    text << in.rdbuf();
    try {
      if (!in) throw std::invalid_argument("cannot read " + command_table);
      checks.merge(text.str());
    } catch (const std::exception& e) {
      std::cerr << "qa-worker: configuration error: " << e.what() << "\n";
      return 2;
    }
  }
  if (sandbox_mode != "bwrap" && sandbox_mode != "none") {
    std::cerr << "qa-worker: configuration error: --sandbox must be bwrap or none\n";
    return 2;
  }
  qa::Sandbox sandbox(sandbox_mode == "bwrap" ? qa::Sandbox::Mode::kBubblewrap : qa::Sandbox::Mode::kNone, limits);
  qa::QaWorker worker(host.catalog(), std::move(checks), sandbox, *host.registry());
  if (sandbox_mode == "none") {
    spdlog::warn("--sandbox=none: generated files are checked WITHOUT a sandbox");
  } else if (const std::string problem = sandbox.probe(); !problem.empty()) {
    // Refuse to run checks unconfined: not ready, and every record waits (nothing is lost).
    spdlog::error("{}; checks will not run (use --sandbox=none only if you accept the risk)", problem);
    host.health()->set_condition("sandbox", false, problem);
    worker.set_sandbox_problem(problem);
  } else {
    spdlog::info("sandbox: bubblewrap works");
  }
  return host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return worker.handle(record, out); });
}
