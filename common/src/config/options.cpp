#include "agentline/config/options.h"

#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "agentline/config/resources.h"

extern char** environ;

namespace agentline::config {

namespace {

constexpr const char* kEnvPrefix = "AGENTLINE_";
constexpr const char* kKafkaEnvPrefix = "AGENTLINE_KAFKA_";

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// "<name>.file" properties read the value of <name> from a file (secrets mounted by
// Kubernetes, for example); the file's content never reaches a log.
void resolve_file_properties(std::map<std::string, std::string>& props) {
  std::map<std::string, std::string> resolved;
  for (auto it = props.begin(); it != props.end();) {
    const std::string& key = it->first;
    if (key.size() > 5 && key.compare(key.size() - 5, 5, ".file") == 0) {
      std::string target = key.substr(0, key.size() - 5);
      try {
        resolved[target] = trim_newlines(read_file(it->second));
      } catch (const std::exception&) {
        throw ConfigError("kafka property " + key + ": cannot read file " + it->second);
      }
      it = props.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [k, v] : resolved) props[k] = v;
}

}  // namespace

struct OptionSet::Impl {
  CLI::App app;
  std::vector<std::string> kafka_flags;
  std::vector<std::string> kafka_file_entries;
  std::map<std::string, std::string>* kafka_target = nullptr;
  std::vector<std::string> names;  // long option names, for the environment pass
  std::vector<std::function<void()>> checks;

  Impl(std::string program, std::string description) : app(std::move(description), std::move(program)) {
    app.set_config("--config", "", "Config file (TOML/INI); also AGENTLINE_CONFIG");
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.get_formatter()->column_width(38);
  }
};

OptionSet::OptionSet(std::string program, std::string description)
    : impl_(std::make_unique<Impl>(std::move(program), std::move(description))) {}
OptionSet::~OptionSet() = default;

void OptionSet::set_version(const std::string& line) { impl_->app.set_version_flag("--version", line); }

std::string OptionSet::env_name(const std::string& name) {
  std::string env = kEnvPrefix;
  for (char c : name)
    env += (c == '-' || c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

void OptionSet::add(const std::string& name, std::string* target, const std::string& help) {
  impl_->app.add_option("--" + name, *target, help + " [env " + env_name(name) + "]")->capture_default_str();
  impl_->names.push_back(name);
}
void OptionSet::add(const std::string& name, int* target, const std::string& help) {
  impl_->app.add_option("--" + name, *target, help + " [env " + env_name(name) + "]")->capture_default_str();
  impl_->names.push_back(name);
}
void OptionSet::add(const std::string& name, double* target, const std::string& help) {
  impl_->app.add_option("--" + name, *target, help + " [env " + env_name(name) + "]")->capture_default_str();
  impl_->names.push_back(name);
}
void OptionSet::add(const std::string& name, std::vector<std::string>* target, const std::string& help) {
  impl_->app.add_option("--" + name, *target, help + " [env " + env_name(name) + "]")->delimiter(',');
  impl_->names.push_back(name);
}
void OptionSet::add_flag(const std::string& name, bool* target, const std::string& help) {
  impl_->app.add_flag("--" + name, *target, help + " [env " + env_name(name) + "]");
  impl_->names.push_back(name);
}

void OptionSet::add_duration(const std::string& name, std::function<void(std::chrono::milliseconds)> set,
                             std::chrono::milliseconds current, const std::string& help,
                             std::chrono::milliseconds bare_unit) {
  const auto ends_with = [&](std::string_view suffix) {
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool unit_in_name = ends_with("-ms") || ends_with("-s");
  impl_->app
      .add_option_function<std::string>(
          "--" + name, [set = std::move(set), bare_unit](const std::string& v) { set(parse_duration(v, bare_unit)); },
          help + " [env " + env_name(name) + "]")
      ->type_name("DURATION")
      // A name that says its unit (`--open-wait-ms`) shows a bare number, others a unit ("30m").
      ->default_str(unit_in_name && current % bare_unit == std::chrono::milliseconds(0)
                        ? std::to_string(current / bare_unit)
                        : format_duration(current));
  impl_->names.push_back(name);
}

void OptionSet::after_parse(std::function<void()> check) { impl_->checks.push_back(std::move(check)); }

void OptionSet::add_kafka_properties(std::map<std::string, std::string>* target) {
  impl_->kafka_target = target;
  impl_->app
      .add_option("-X,--kafka", impl_->kafka_flags,
                  "librdkafka property key=value (repeatable); also AGENTLINE_KAFKA_<KEY>")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

OptionSet::Outcome OptionSet::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return parse(args);
}

OptionSet::Outcome OptionSet::parse(const std::vector<std::string>& args) {
  // Environment variables beat the config file and lose to flags. CLI11 ranks the file above
  // the environment, so a variable is passed as a flag unless the command line has that flag.
  std::vector<std::string> all = args;
  auto from_environment = [&](const std::string& name, const char* value) {
    if (value == nullptr) return;
    const std::string flag = "--" + name;
    bool on_command_line = std::any_of(args.begin(), args.end(),
                                       [&](const std::string& a) { return a == flag || a.rfind(flag + "=", 0) == 0; });
    if (!on_command_line) all.push_back(flag + "=" + value);
  };
  // CLI11 reads the config file before it looks at the environment, so AGENTLINE_CONFIG (how the
  // Helm chart names each service's file) is passed as --config the same way.
  const char* config_file = std::getenv("AGENTLINE_CONFIG");
  from_environment("config", config_file != nullptr && *config_file != '\0' ? config_file : nullptr);
  for (const auto& name : impl_->names) from_environment(name, std::getenv(env_name(name).c_str()));
  std::vector<std::string> reversed(all.rbegin(), all.rend());
  try {
    impl_->app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::fputs(impl_->app.help().c_str(), stdout);
    return Outcome::kExit;
  } catch (const CLI::CallForVersion&) {
    std::puts(impl_->app.version().c_str());
    return Outcome::kExit;
  } catch (const CLI::ParseError& e) {
    throw ConfigError(e.what());
  }
  if (impl_->kafka_target != nullptr) {
    // Precedence: config file < environment < flags.
    std::map<std::string, std::string> props;
    for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
      std::string entry = *env;
      if (entry.rfind(kKafkaEnvPrefix, 0) != 0) continue;
      auto eq = entry.find('=');
      if (eq == std::string::npos) continue;
      std::string key = entry.substr(std::strlen(kKafkaEnvPrefix), eq - std::strlen(kKafkaEnvPrefix));
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return c == '_' ? '.' : static_cast<char>(std::tolower(c)); });
      props[key] = entry.substr(eq + 1);
    }
    for (auto& [k, v] : parse_properties(impl_->kafka_flags)) props[k] = v;
    resolve_file_properties(props);
    for (auto& [k, v] : props) (*impl_->kafka_target)[k] = v;
  }
  for (const auto& check : impl_->checks) {
    try {
      check();
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }
  }
  return Outcome::kRun;
}

std::map<std::string, std::string> parse_properties(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> props;
  for (const auto& entry : entries) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("kafka property '" + entry + "' is not of the form key=value");
    }
    props[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return props;
}

bool is_secret_key(const std::string& key) {
  static const char* kSecretWords[] = {"password", "secret", "token", "key.pem", "credential"};
  std::string lower = key;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::any_of(std::begin(kSecretWords), std::end(kSecretWords),
                     [&](const char* w) { return lower.find(w) != std::string::npos; });
}

std::string read_secret(const std::string& file, const char* env_var) {
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw ConfigError("cannot read the secret file " + file);
    std::string value;
    std::getline(in, value);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    return value;
  }
  const char* v = std::getenv(env_var);
  return v ? v : "";
}

bool same_secret(std::string_view given, std::string_view secret) {
  if (secret.empty() || given.size() != secret.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return diff == 0;
}

std::chrono::milliseconds parse_duration(std::string_view text, std::chrono::milliseconds bare_unit) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = text.substr(digits);
  static const std::pair<std::string_view, std::int64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  std::int64_t factor = unit.empty() ? bare_unit.count() : 0;
  for (const auto& [name, ms] : kUnits) {
    if (unit == name) factor = ms;
  }
  if (digits == 0 || digits > 12 || factor == 0)
    throw ConfigError("'" + std::string(text) + "' is not a duration (e.g. 500ms, 30s, 90m, 12h, 7d)");
  return std::chrono::milliseconds(std::stoll(std::string(text.substr(0, digits))) * factor);
}

std::string format_duration(std::chrono::milliseconds d) {
  static const std::pair<const char*, std::int64_t> kUnits[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  for (const auto& [name, ms] : kUnits) {
    if (d.count() != 0 && d.count() % ms == 0) return std::to_string(d.count() / ms) + name;
  }
  return "0ms";
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace agentline::config
