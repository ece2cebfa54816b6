// libFuzzer target: what an operator hands a service at start. The input is command-line
// arguments (one per line) up to the first NUL byte, then a config file (TOML/INI). Bad input
// is a ConfigError with a message; nothing else may escape.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agentline/config/options.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::freopen("/dev/null", "w", stdout);  // --help prints the usage on every such input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using agentline::config::ConfigError;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string_view arg_text = input.substr(0, nul);
  const std::string_view file_text = nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);

  std::vector<std::string> args;
  for (std::size_t start = 0; start <= arg_text.size();) {
    auto end = arg_text.find('\n', start);
    if (end == std::string_view::npos) end = arg_text.size();
    if (end > start) args.emplace_back(arg_text.substr(start, end - start));
    start = end + 1;
  }
  const int fd = memfd_create("agentline-fuzz-config", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (!file_text.empty() && write(fd, file_text.data(), file_text.size()) < 0) {
    close(fd);
    return 0;
  }
  if (!file_text.empty()) {
    args.push_back("--config");
    args.push_back("/proc/self/fd/" + std::to_string(fd));
  }

  std::string name = "svc", url;
  int port = 9400;
  double rate = 1.5;
  std::vector<std::string> list;
  bool flag = false;
  std::map<std::string, std::string> kafka;
  agentline::config::OptionSet options("fuzz", "config fuzz target");
  options.add("name", &name, "a string");
  options.add("webhook-url", &url, "a URL");
  options.add("http-port", &port, "an int");
  options.add("tenant-rate", &rate, "a double");
  options.add("services", &list, "a list");
  options.add_flag("dry-run", &flag, "a flag");
  options.add_kafka_properties(&kafka);
  try {
    options.parse(args);
  } catch (const ConfigError&) {
  }
  try {
    (void)agentline::config::parse_properties(args);
  } catch (const ConfigError&) {
  }
  close(fd);
  return 0;
}
