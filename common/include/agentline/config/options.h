#pragma once
// Command-line, environment and config-file options, with one precedence everywhere:
//   defaults (the struct's initializers) < config file < environment < flags.
// Each option `--some-name` is also read from AGENTLINE_SOME_NAME and from the key
// `some-name` of the config file (TOML/INI, given by --config or AGENTLINE_CONFIG).
// librdkafka properties pass through as `-X key=value` (repeatable), the file key
// `kafka = ["key=value", ...]` and variables AGENTLINE_KAFKA_<KEY> (dots as '_').
// A property `<name>.file` reads the value of <name> from a file (for secrets).
// Unknown flags and unknown config-file keys are errors.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace agentline::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OptionSet {
 public:
  OptionSet(std::string program, std::string description);
  ~OptionSet();
  // Adds --version, printing `line`.
  void set_version(const std::string& line);
  OptionSet(const OptionSet&) = delete;
  OptionSet& operator=(const OptionSet&) = delete;

  void add(const std::string& name, std::string* target, const std::string& help);
  void add(const std::string& name, int* target, const std::string& help);
  void add(const std::string& name, double* target, const std::string& help);
  void add(const std::string& name, std::vector<std::string>* target, const std::string& help);
  // A duration: "500ms", "30s", "90m", "12h", "7d", or a bare number in `bare_unit` (the unit
  // the option's name says: `--open-wait-ms 500`).
  template <class Rep, class Period>
  void add(const std::string& name, std::chrono::duration<Rep, Period>* target, const std::string& help,
           std::chrono::milliseconds bare_unit = std::chrono::milliseconds(1)) {
    add_duration(
        name,
        [target](std::chrono::milliseconds d) {
          *target = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(d);
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(*target), help, bare_unit);
  }
  void add_flag(const std::string& name, bool* target, const std::string& help);
  // Runs after a successful parse, in the order added: checks and derived values of what was
  // bound. An exception from it is a configuration error.
  void after_parse(std::function<void()> check);
  // Collects librdkafka properties into `target` (see the file comment).
  void add_kafka_properties(std::map<std::string, std::string>* target);

  enum class Outcome { kRun, kExit };
  // Parses argv. Returns kExit after printing --help; throws ConfigError on bad input.
  Outcome parse(int argc, const char* const* argv);
  // For tests and `agentline`: parse without argv[0].
  Outcome parse(const std::vector<std::string>& args);

  // The environment variable that feeds option `name`.
  static std::string env_name(const std::string& name);

 private:
  void add_duration(const std::string& name, std::function<void(std::chrono::milliseconds)> set,
                    std::chrono::milliseconds current, const std::string& help, std::chrono::milliseconds bare_unit);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "key=value" pairs; throws ConfigError for entries without '='.
std::map<std::string, std::string> parse_properties(const std::vector<std::string>& entries);
// True for property names whose values must never be logged.
bool is_secret_key(const std::string& key);
// A secret (token, PAT): the first line of `file` when given, else the variable `env_var`,
// else "". Throws ConfigError when the file cannot be read. Never logged.
std::string read_secret(const std::string& file, const char* env_var);
// True when `given` equals the non-empty `secret`, compared without an early exit (the time
// taken does not tell how much of it matched).
bool same_secret(std::string_view given, std::string_view secret);
// A duration written with its unit: "500ms", "30s", "90m", "12h", "7d"; a bare number is in
// `bare_unit` (seconds unless told). Throws ConfigError for anything else (negative, unknown
// unit, overflow).
std::chrono::milliseconds parse_duration(std::string_view text,
                                         std::chrono::milliseconds bare_unit = std::chrono::seconds(1));
// The shortest way parse_duration reads back: "500ms", "30s", "90m", "12h", "7d".
std::string format_duration(std::chrono::milliseconds d);
// True for an address only this machine can reach (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(std::string_view host);

}  // namespace agentline::config
