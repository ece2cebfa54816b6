#pragma once
// Which checks run on which file (the seed's selective invocation), which run on a job as a
// whole, and how their output becomes structured diagnostics {file, line, column, severity,
// check, message} for the fix prompt.
//
// Per file, in order (the first check with an error ends the file's run):
//   .py  py_compile, then pyflakes         .c/.h gcc -fsyntax-only   .cc/.cpp/.hpp g++ -fsyntax-only
//   .js/.mjs/.cjs node --check             .sh/.bash bash -n, then shellcheck
//   .json/.yaml/.yml parsed by python3
// Errors fail a file; warnings (an unused import, a shellcheck warning) let it pass and travel
// with it into any later fix prompt (docs/qa.md says which findings are which).
// Per job (JobChecks, job_checks.h), by the extensions present: .py every module imports and
// pytest runs the job's tests; .c/.cc/.cpp the sources compile and link together; .js/.mjs/.cjs
// every module loads.
// A command table file adds or replaces entries, one check or a list per extension:
//   {"<.ext>": {"name": "ruff", "argv": ["ruff", "check", "{file}"], "parser": "gcc"}}
//   {"<.ext>": [{...}, {...}]}
// {file} is replaced by the file's name inside the sandbox. parser: gcc, python, node, bash,
// json, yaml, pyflakes, agentline (JSON lines from the job-check driver) or plain (the whole
// output as one diagnostic). "probe": an argv run once at start in the sandbox; a check whose
// probe fails (its tool is not installed) is skipped, with a warning, instead of failing files.
#include <functional>
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
  std::vector<std::string> probe;  // empty: always available
};

class CheckTable {
 public:
  // The per-file checks.
  static CheckTable defaults();
  // The job checks (the job-check driver's kinds).
  static CheckTable job_defaults();
  // Merges a command table (JSON text) over this one; throws std::invalid_argument on unknown
  // keys or a malformed entry.
  void merge(const std::string& json_text);
  // The checks for `path` by its extension, in order (empty if none).
  std::vector<Check> for_path(const std::string& path) const;
  // The distinct checks (by name) any of `paths` calls for, in the order first met.
  std::vector<Check> for_paths(const std::vector<std::string>& paths) const;
  // Drops every check whose probe `works` refuses; returns "<name>: <argv[0]> ..." for each.
  std::vector<std::string> drop_unavailable(const std::function<bool(const std::vector<std::string>&)>& works);

 private:
  std::map<std::string, std::vector<Check>> by_extension_;
};

// A finding's severity by pyflakes' message: names that do not resolve, misplaced statements
// and syntax are errors; unused imports and variables, redefinitions, star imports are warnings.
std::string pyflakes_severity(const std::string& message);

// Diagnostics from a check's output. `sandbox_name` is the file's name in the sandbox, `path`
// the task's path (what the diagnostics name).
nlohmann::json parse_diagnostics(const std::string& parser, const std::string& output, const std::string& sandbox_name,
                                 const std::string& path, const std::string& check);
// Diagnostics from a job check's output, each naming the file the output names (relative to the
// job's root, /work in the sandbox); `agentline` reads the driver's JSON lines, and its
// {"skipped": why} line (its tool is missing) into *skipped.
nlohmann::json parse_job_diagnostics(const std::string& parser, const std::string& output, const std::string& check,
                                     std::string* skipped = nullptr);
// Tool output is untrusted bytes: invalid UTF-8 becomes U+FFFD, so an event (JSON) can always
// be written.
std::string valid_utf8(const std::string& s);

}  // namespace agentline::qa
