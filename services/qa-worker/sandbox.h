#pragma once
// Runs a check command on a generated file inside bubblewrap: no network and no other
// namespaces shared (--unshare-all), a read-only system (/usr, /bin, /lib, /etc), a private
// /tmp, and only the check's own work directory writable. Limits: CPU seconds, address space,
// processes, file size, output bytes, and wall-clock time (the whole process group is killed).
// Arguments go to execve as argv; no shell is involved. When the worker runs as root, each
// running check gets an unprivileged uid of its own (uid_base + slot, no passwd entry needed):
// RLIMIT_NPROC counts a uid's processes, so the process limit binds one check and concurrent
// checks cannot use up each other's. Not as root (a container's user), bubblewrap's user
// namespace does the same: the limit is set inside it, where only the check's processes count.
// Thread-safe: every run is independent.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace agentline::qa {

struct SandboxLimits {
  int cpu_seconds = 10;
  std::int64_t memory_bytes = std::int64_t{1} << 30;  // RLIMIT_AS
  int processes = 64;
  std::int64_t file_bytes = 16 << 20;
  std::size_t output_bytes = 64 << 10;
  std::chrono::milliseconds wall{20000};
  int uid_base = 200000;  // as root: checks run as uid_base .. uid_base + 1023
};

struct SandboxResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string limit;   // "", "wall_clock", "cpu_time", "memory", "processes", "output"
  std::string output;  // stdout and stderr, interleaved, cut at output_bytes
  std::chrono::milliseconds duration{0};
  bool infrastructure_error = false;  // the sandbox itself could not start
};

class Sandbox {
 public:
  enum class Mode { kBubblewrap, kNone };
  Sandbox(Mode mode, SandboxLimits limits);
  // Runs argv with `workdir` as its working directory (/work inside the sandbox).
  SandboxResult run(const std::vector<std::string>& argv, const std::string& workdir) const;
  // Runs `true`: empty if the sandbox works, else why not.
  std::string probe() const;
  Mode mode() const { return mode_; }
  const SandboxLimits& limits() const { return limits_; }

 private:
  struct UidPool;
  Mode mode_;
  SandboxLimits limits_;
  std::shared_ptr<UidPool> uids_;
};

}  // namespace agentline::qa
