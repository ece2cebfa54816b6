// libFuzzer target: a check's output (gcc, python, node, bash, json, yaml, pyflakes or anything)
// turned into structured diagnostics for the fix prompt, and a job check's output (the driver's
// JSON lines, which the job's own code could try to imitate, or gcc's). Tool output is untrusted
// text: every input must give a JSON array of diagnostics, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const char* const kParsers[] = {"gcc",  "python",   "node",  "bash",   "json",
                                         "yaml", "pyflakes", "plain", "unknown"};
  if (size == 0) return 0;
  const std::string parser = kParsers[data[0] % (sizeof(kParsers) / sizeof(kParsers[0]))];
  const std::string output(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto diagnostics = agentline::qa::parse_diagnostics(parser, output, "file.py", "app/file.py", parser);
  if (!diagnostics.is_array()) __builtin_trap();
  (void)diagnostics.dump();  // strict, as qa-worker serialises its QA_FAILED event
  auto job = agentline::qa::parse_job_diagnostics(data[0] % 2 ? "agentline" : "gcc", output, "job");
  if (!job.is_array()) __builtin_trap();
  (void)job.dump();
  return 0;
}
