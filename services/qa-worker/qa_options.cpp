#include "qa_options.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agentline/config/options.h"

namespace agentline::qa {

SandboxLimits QaOptions::job_check_limits() {
  SandboxLimits l;
  l.cpu_seconds = 60;
  l.wall = std::chrono::milliseconds(120000);
  l.processes = 128;
  return l;
}

void QaOptions::bind(config::OptionSet& o) {
  o.add("sandbox", &sandbox_mode,
        "bwrap (bubblewrap), or none: run checks unconfined (UNSAFE: generated code runs as the worker)");
  o.add("checks", &command_table, "Command table (JSON) adding or replacing checks by extension");
  o.add("job-checks", &job_command_table,
        "Command table (JSON) adding or replacing job checks by extension (run once per job, in its root)");
  o.add("job-check-cpu-seconds", &job_limits.cpu_seconds, "Sandbox: CPU seconds per process of a job check");
  o.add("job-check-wall-ms", &job_limits.wall, "Sandbox: wall-clock time per job check");
  o.add("check-cpu-seconds", &limits.cpu_seconds, "Sandbox: CPU seconds per check");
  o.add("check-memory-mb", &memory_mb, "Sandbox: address space per check (MiB)");
  o.add("check-processes", &limits.processes, "Sandbox: processes (RLIMIT_NPROC of the sandbox user)");
  o.add("check-wall-ms", &limits.wall, "Sandbox: wall-clock time per check");
  o.add("sandbox-uid-base", &limits.uid_base,
        "Sandbox, as root: checks run as uids from this one up (one per running check)");
}

void QaOptions::load() {
  for (auto [file, table] : {std::pair{&command_table, &checks}, std::pair{&job_command_table, &job_checks}}) {
    if (file->empty()) continue;
    std::ifstream in(*file);
    if (!in) throw std::invalid_argument("cannot read " + *file);
    std::stringstream text;
    text << in.rdbuf();
    table->merge(text.str());
  }
  if (sandbox_mode != "bwrap" && sandbox_mode != "none") throw std::invalid_argument("--sandbox must be bwrap or none");
  if (memory_mb < 1) throw std::invalid_argument("--check-memory-mb must be at least 1");
  limits.memory_bytes = static_cast<std::int64_t>(memory_mb) << 20;
  job_limits.memory_bytes = limits.memory_bytes;
  job_limits.uid_base = limits.uid_base;
}

std::string prepare_sandbox(QaOptions& options, Sandbox& sandbox) {
  if (options.mode() == Sandbox::Mode::kNone) {
    spdlog::warn("--sandbox=none: generated files are checked WITHOUT a sandbox");
  } else if (auto problem = sandbox.probe(); !problem.empty()) {
    spdlog::error("{}; checks will not run (use --sandbox=none only if you accept the risk)", problem);
    return problem;
  } else {
    spdlog::info("sandbox: bubblewrap works");
  }
  const std::string probe_dir =
      (std::filesystem::temp_directory_path() / ("agentline-qa-probe-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(probe_dir);
  std::filesystem::permissions(probe_dir, std::filesystem::perms::all);
  auto works = [&](const std::vector<std::string>& argv) {
    const auto r = sandbox.run(argv, probe_dir);
    return !r.infrastructure_error && r.limit.empty() && r.exit_code == 0;
  };
  for (auto* table : {&options.checks, &options.job_checks}) {
    for (const auto& dropped : table->drop_unavailable(works)) spdlog::warn("check skipped: {}", dropped);
  }
  std::error_code ignored;
  std::filesystem::remove_all(probe_dir, ignored);
  return "";
}

}  // namespace agentline::qa
