// qa-worker: qa.requests (FILE_COMPLETED, JOB_CHECK_REQUESTED) -> events (QA_PASSED / QA_FAILED,
// JOB_QA_PASSED / JOB_QA_FAILED).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include "agentline/observability/health.h"
#include "agentline/service/service_host.h"
#include "qa_worker.h"

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("qa-worker", "Checks generated files by type, in a sandbox.", {"qa.requests"});
  std::string sandbox_mode = "bwrap";
  std::string command_table, job_command_table;
  qa::SandboxLimits limits;
  qa::SandboxLimits job_limits;
  job_limits.cpu_seconds = 60;
  job_limits.wall = std::chrono::milliseconds(120000);
  job_limits.processes = 128;
  int job_wall_ms = static_cast<int>(job_limits.wall.count());
  int wall_ms = static_cast<int>(limits.wall.count());
  int memory_mb = static_cast<int>(limits.memory_bytes >> 20);
  auto& o = host.options();
  o.add("sandbox", &sandbox_mode,
        "bwrap (bubblewrap), or none: run checks unconfined (UNSAFE: generated code runs as the worker)");
  o.add("checks", &command_table, "Command table (JSON) adding or replacing checks by extension");
  o.add("job-checks", &job_command_table,
        "Command table (JSON) adding or replacing job checks by extension (run once per job, in its root)");
  o.add("job-check-cpu-seconds", &job_limits.cpu_seconds, "Sandbox: CPU seconds per process of a job check");
  o.add("job-check-wall-ms", &job_wall_ms, "Sandbox: wall-clock time per job check");
  o.add("check-cpu-seconds", &limits.cpu_seconds, "Sandbox: CPU seconds per check");
  o.add("check-memory-mb", &memory_mb, "Sandbox: address space per check (MiB)");
  o.add("check-processes", &limits.processes, "Sandbox: processes (RLIMIT_NPROC of the sandbox user)");
  o.add("check-wall-ms", &wall_ms, "Sandbox: wall-clock time per check");
  o.add("sandbox-uid-base", &limits.uid_base,
        "Sandbox, as root: checks run as uids from this one up (one per running check)");
  qa::CheckTable checks = qa::CheckTable::defaults();
  qa::CheckTable job_checks = qa::CheckTable::job_defaults();
  if (auto exit_code = host.configure(argc, argv, [&] {
        for (auto [file, table] : {std::pair{&command_table, &checks}, std::pair{&job_command_table, &job_checks}}) {
          if (file->empty()) continue;
          std::ifstream in(*file);
          if (!in) throw std::invalid_argument("cannot read " + *file);
          std::stringstream text;
          text << in.rdbuf();
          table->merge(text.str());
        }
        if (sandbox_mode != "bwrap" && sandbox_mode != "none")
          throw std::invalid_argument("--sandbox must be bwrap or none");
      }))
    return *exit_code;
  limits.wall = std::chrono::milliseconds(wall_ms);
  limits.memory_bytes = static_cast<std::int64_t>(memory_mb) << 20;
  job_limits.wall = std::chrono::milliseconds(job_wall_ms);
  job_limits.memory_bytes = limits.memory_bytes;
  job_limits.uid_base = limits.uid_base;

  const auto mode = sandbox_mode == "bwrap" ? qa::Sandbox::Mode::kBubblewrap : qa::Sandbox::Mode::kNone;
  qa::Sandbox sandbox(mode, limits);
  qa::Sandbox job_sandbox(mode, job_limits);
  std::string sandbox_problem;
  if (sandbox_mode == "none") {
    spdlog::warn("--sandbox=none: generated files are checked WITHOUT a sandbox");
  } else if (sandbox_problem = sandbox.probe(); !sandbox_problem.empty()) {
    // Refuse to run checks unconfined: not ready, and every record waits (nothing is lost).
    spdlog::error("{}; checks will not run (use --sandbox=none only if you accept the risk)", sandbox_problem);
    host.health()->set_condition("sandbox", false, sandbox_problem);
  } else {
    spdlog::info("sandbox: bubblewrap works");
  }
  if (sandbox_problem.empty()) {
    // A check whose tool is not installed where checks run is skipped, not failing every file.
    const std::string probe_dir =
        (std::filesystem::temp_directory_path() / ("agentline-qa-probe-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(probe_dir);
    std::filesystem::permissions(probe_dir, std::filesystem::perms::all);
    auto works = [&](const std::vector<std::string>& argv) {
      const auto r = sandbox.run(argv, probe_dir);
      return !r.infrastructure_error && r.limit.empty() && r.exit_code == 0;
    };
    for (auto* table : {&checks, &job_checks}) {
      for (const auto& dropped : table->drop_unavailable(works)) spdlog::warn("check skipped: {}", dropped);
    }
    std::error_code ignored;
    std::filesystem::remove_all(probe_dir, ignored);
  }
  qa::QaWorker worker(host.catalog(), std::move(checks), std::move(job_checks), sandbox, job_sandbox, *host.registry());
  worker.set_sandbox_problem(sandbox_problem);
  return host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return worker.handle(record, out); });
}
