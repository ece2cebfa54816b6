#include "agentline/config/container_resources.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace agentline::config {
namespace {

bool read_first_line(const std::string& path, std::string& out) {
  std::ifstream in(path);
  return static_cast<bool>(std::getline(in, out));
}

}  // namespace

ContainerResources ContainerResources::detect(const std::string& cgroup_root, const std::string& proc_root) {
  ContainerResources r;
  r.cpus = std::max(1u, std::thread::hardware_concurrency());
  r.cpu_source = "host";
  std::string line;
  // cgroup v2: "max 100000" (no quota) or "150000 100000" (1.5 CPUs).
  if (read_first_line(cgroup_root + "/cpu.max", line)) {
    std::istringstream in(line);
    std::string quota;
    double period = 0;
    if (in >> quota >> period && quota != "max" && period > 0) {
      try {
        r.cpus = std::stod(quota) / period;
        r.cpu_source = "cgroup2 cpu.max";
      } catch (...) {
      }
    }
  } else if (read_first_line(cgroup_root + "/cpu/cpu.cfs_quota_us", line)) {
    std::string period_line;
    try {
      const double quota = std::stod(line);
      if (quota > 0 && read_first_line(cgroup_root + "/cpu/cpu.cfs_period_us", period_line)) {
        const double period = std::stod(period_line);
        if (period > 0) {
          r.cpus = quota / period;
          r.cpu_source = "cgroup1 cfs quota";
        }
      }
    } catch (...) {
    }
  }

  // Physical memory first, then a lower container limit if there is one.
  r.memory_source = "host";
  std::ifstream meminfo(proc_root + "/meminfo");
  std::string key;
  std::int64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemTotal:") {
      r.memory_bytes = kib * 1024;
      break;
    }
    meminfo.ignore(1 << 10, '\n');
  }
  if (r.memory_bytes == 0) r.memory_bytes = static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  for (const auto& [file, source] : {std::pair{std::string("/memory.max"), "cgroup2 memory.max"},
                                     std::pair{std::string("/memory/memory.limit_in_bytes"), "cgroup1 memory limit"}}) {
    if (!read_first_line(cgroup_root + file, line) || line == "max") continue;
    try {
      const auto limit = static_cast<std::int64_t>(std::stoll(line));
      if (limit > 0 && limit < r.memory_bytes) {
        r.memory_bytes = limit;
        r.memory_source = source;
      }
    } catch (...) {
    }
    break;
  }
  return r;
}

}  // namespace agentline::config
