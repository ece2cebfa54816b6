#pragma once
// qa-worker's own options, and the start-up work on them: the command tables read, the sandbox
// probed, the checks whose tools are missing where checks run dropped.
#include <string>

#include "checks.h"
#include "sandbox.h"

namespace agentline::config {
class OptionSet;
}

namespace agentline::qa {

struct QaOptions {
  std::string sandbox_mode = "bwrap";  // or none
  std::string command_table, job_command_table;
  SandboxLimits limits;
  SandboxLimits job_limits = job_check_limits();
  int memory_mb = static_cast<int>(limits.memory_bytes >> 20);
  CheckTable checks = CheckTable::defaults();
  CheckTable job_checks = CheckTable::job_defaults();

  void bind(config::OptionSet& options);
  // Reads the command tables and applies the limits. Throws for what is wrong.
  void load();
  Sandbox::Mode mode() const { return sandbox_mode == "bwrap" ? Sandbox::Mode::kBubblewrap : Sandbox::Mode::kNone; }

  static SandboxLimits job_check_limits();
};

// Checks that `sandbox` works (bubblewrap) and drops the checks of both tables whose tools do
// not run in it (skipped, not failing every file). Returns the problem; empty when it works.
std::string prepare_sandbox(QaOptions& options, Sandbox& sandbox);

}  // namespace agentline::qa
