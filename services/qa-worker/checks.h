#pragma once
// Which check runs on which file (the seed's selective invocation), and how its output becomes
// structured diagnostics (file, line, column, severity, message) for the fix prompt.
//
// Built-in: .py python3 -m py_compile; .c/.h gcc -fsyntax-only; .cc/.cpp/.cxx/.hpp g++
// -fsyntax-only; .js/.mjs/.cjs node --check; .sh/.bash bash -n; .json and .yaml/.yml parsed by
// python3. A command table file adds or replaces entries:
//   {"<.ext>": {"name": "ruff", "argv": ["ruff", "check", "{file}"], "parser": "gcc"}}
// {file} is replaced by the file's name inside the sandbox. parser: gcc, python, node, bash,
// json, yaml or plain (the whole output as one diagnostic).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agentline::qa {

struct Check {
  std::string name;
  std::vector<std::string> argv;
  std::string parser = "plain";
};

class CheckTable {
 public:
  static CheckTable defaults();
  // Merges a command table (JSON text) over this one; throws std::invalid_argument on unknown
  // keys or a malformed entry.
  void merge(const std::string& json_text);
  // The check for `path` by its extension, if any.
  std::optional<Check> for_path(const std::string& path) const;

 private:
  std::map<std::string, Check> by_extension_;
};

// Diagnostics from a check's output. `sandbox_name` is the file's name in the sandbox, `path`
// the task's path (what the diagnostics name).
nlohmann::json parse_diagnostics(const std::string& parser, const std::string& output, const std::string& sandbox_name,
                                 const std::string& path, const std::string& check);

}  // namespace agentline::qa
