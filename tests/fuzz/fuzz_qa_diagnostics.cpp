// libFuzzer target: a check's output (gcc, python, node, bash, json, yaml or anything) turned
// into structured diagnostics for the fix prompt. Tool output is untrusted text: every input
// must give a JSON array of diagnostics, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const char* const kParsers[] = {"gcc", "python", "node", "bash", "json", "yaml", "plain", "unknown"};
  if (size == 0) return 0;
  const std::string parser = kParsers[data[0] % (sizeof(kParsers) / sizeof(kParsers[0]))];
  const std::string output(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto diagnostics = agentline::qa::parse_diagnostics(parser, output, "file.py", "app/file.py", parser);
  if (!diagnostics.is_array()) __builtin_trap();
  (void)diagnostics.dump();  // strict, as qa-worker serialises its QA_FAILED event
  return 0;
}
