#include "agentline/observability/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "agentline/config/container_resources.h"
#include "agentline/observability/metric_families.h"

namespace agentline::observability {
namespace {

void gauge(std::vector<prometheus::MetricFamily>& families, const char* name, const char* help, double value,
           prometheus::MetricType type = prometheus::MetricType::Gauge) {
  add_sample(family(families, name, help, type), {}, value);
}

// Seconds since the epoch at which the system booted (for the process start time).
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

}  // namespace

void append_process_metrics(std::vector<prometheus::MetricFamily>& families) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat;
  std::getline(stat_file, stat);
  // Fields after the command name, which is in parentheses and may contain spaces.
  const auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    // f[0] is field 3 (state): utime = field 14 -> f[11], stime f[12], threads f[17],
    // starttime f[19], vsize f[20], rss pages f[21].
    if (f.size() > 21) {
      gauge(families, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            (std::stod(f[11]) + std::stod(f[12])) / ticks, prometheus::MetricType::Counter);
      gauge(families, "process_threads", "Number of OS threads in the process.", std::stod(f[17]));
      gauge(families, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            boot_time() + std::stod(f[19]) / ticks);
      gauge(families, "process_virtual_memory_bytes", "Virtual memory size in bytes.", std::stod(f[20]));
      gauge(families, "process_resident_memory_bytes", "Resident memory size in bytes.", std::stod(f[21]) * page);
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) gauge(families, "process_open_fds", "Number of open file descriptors.", static_cast<double>(fds));
  // The container's limits (cgroup), for "memory above 80% of the limit"; +Inf when none.
  static const auto resources = config::ContainerResources::detect();
  const bool memory_limited = resources.memory_source.rfind("cgroup", 0) == 0;
  gauge(families, "agentline_container_memory_limit_bytes",
        "Memory limit of the container (cgroup); +Inf when unlimited",
        memory_limited ? static_cast<double>(resources.memory_bytes) : std::numeric_limits<double>::infinity());
  gauge(families, "agentline_container_cpu_limit_cores",
        "CPU limit of the container (cgroup quota), or the host's CPUs", resources.cpus);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    gauge(families, "process_max_fds", "Maximum number of open file descriptors.", static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace agentline::observability
