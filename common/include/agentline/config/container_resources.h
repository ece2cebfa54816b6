#pragma once
// What the container may use: the CPU quota and memory limit from cgroup v2 (cpu.max,
// memory.max) or v1 (cpu.cfs_quota_us / cpu.cfs_period_us, memory.limit_in_bytes), falling back
// to the machine's CPUs and physical memory. Pools and batchers size their defaults from it, so
// a pod limited to 2 CPUs does not start 64 threads because the node has 64 cores.
#include <cstdint>
#include <string>

namespace agentline::config {

struct ContainerResources {
  double cpus = 1;                // may be fractional (a quota of 1.5 CPUs)
  std::int64_t memory_bytes = 0;  // the limit, or physical memory when unlimited
  std::string cpu_source;         // "cgroup2 cpu.max", "cgroup1 cfs quota", "host"
  std::string memory_source;

  // Reads the real files; `cgroup_root` and `proc_root` exist for tests.
  static ContainerResources detect(const std::string& cgroup_root = "/sys/fs/cgroup",
                                   const std::string& proc_root = "/proc");
};

}  // namespace agentline::config
