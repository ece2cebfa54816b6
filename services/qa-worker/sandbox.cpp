#include "sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace agentline::qa {

namespace {

// What the child does between its start and exec. It shares the worker's memory until exec
// (CLONE_VM | CLONE_VFORK, as posix_spawn does), so starting it copies no page tables: fork()
// of the worker, with its threads and heap, cost about 10 ms a check in page-table copies and
// the TLB shootdowns of the copy-on-write faults after it. So the child makes raw system calls
// only: glibc's setuid() would signal the worker's threads to change their ids too, and a
// sanitizer's interceptors would update the worker's own bookkeeping.
struct ChildPlan {
  const char* path;  // argv[0] found on PATH by the parent
  char* const* argv;
  char* const* envp;
  const char* workdir;
  int out_fd;
  int exec_error_fd;
  rlimit cpu, as, nproc, fsize;
  bool limit_processes;  // set RLIMIT_NPROC here (else the sandbox sets it inside, see run())
  bool drop_privileges;
  uid_t uid;
  sigset_t worker_mask;  // restored before exec
};

// The kernel's struct sigaction (rt_sigaction's), not glibc's.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};

[[noreturn]] void child_exit(int code) {
  ::syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

__attribute__((no_sanitize_address, no_sanitize("thread"))) int child_main(void* arg) {
  const auto& plan = *static_cast<const ChildPlan*>(arg);
  // The worker's signal handlers would run on the worker's memory: the defaults, before any
  // signal is let in.
  for (long sig = 1; sig < 65; ++sig) {
    KernelSigaction old{};
    if (::syscall(SYS_rt_sigaction, sig, nullptr, &old, sizeof old.mask) != 0) continue;
    if (old.handler == SIG_IGN || old.handler == SIG_DFL) continue;
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
  ::syscall(SYS_setsid);
  ::syscall(SYS_dup3, plan.out_fd, 1, 0);
  ::syscall(SYS_dup3, plan.out_fd, 2, 0);
  const long null_fd = ::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
  if (null_fd >= 0) ::syscall(SYS_dup3, null_fd, 0, 0);
  if (::syscall(SYS_chdir, plan.workdir) != 0) child_exit(125);
  ::syscall(SYS_prlimit64, 0, RLIMIT_CPU, &plan.cpu, nullptr);
  ::syscall(SYS_prlimit64, 0, RLIMIT_AS, &plan.as, nullptr);
  ::syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &plan.fsize, nullptr);
  if (plan.drop_privileges) {
    // RLIMIT_NPROC does not bind root: run as a uid of this check's own.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setgid, 65534) != 0 ||
        ::syscall(SYS_setuid, plan.uid) != 0)
      child_exit(126);
  }
  if (plan.limit_processes) ::syscall(SYS_prlimit64, 0, RLIMIT_NPROC, &plan.nproc, nullptr);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &plan.worker_mask, nullptr, sizeof(std::uint64_t));
  ::syscall(SYS_execve, plan.path, plan.argv, plan.envp);
  // syscall() left the error in errno (the worker thread's, shared until exec): tell the parent.
  const int code = errno;
  ::syscall(SYS_write, plan.exec_error_fd, &code, sizeof code);
  child_exit(127);
}

// argv[0] as execvp would find it on PATH ("" when nowhere: exec then fails with ENOENT, and
// never runs a file of that name in the check's directory).
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    const auto end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

// Starts the child; returns its pid (-errno on failure) and, when the kernel gives one, a pidfd
// that becomes readable when it exits.
pid_t start_child(ChildPlan plan, int* pidfd) {
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &plan.worker_mask);
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer does not see a clone() sharing the worker's memory (glibc's clone is not
  // intercepted, so its runtime cannot account for the child; with it, qa-worker reported races
  // between accesses that hold the same mutex): its builds fork, as before. The child's code is
  // the same.
  *pidfd = -1;
  pid_t pid = ::fork();
  if (pid == 0) child_main(&plan);
#else
  // The child runs on a stack of its own, this thread's, reused (the parent waits meanwhile).
  constexpr std::size_t kStack = 256 << 10;
  thread_local std::unique_ptr<char[]> stack;
  if (!stack) stack = std::make_unique<char[]>(kStack);
  void* top = stack.get() + kStack;
  pid_t pid = ::clone(child_main, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &plan, pidfd);
  if (pid < 0 && errno == EINVAL) {  // a kernel before 5.2: no pidfd, waited for by polling
    *pidfd = -1;
    pid = ::clone(child_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  }
#endif
  const int error = errno;
  ::pthread_sigmask(SIG_SETMASK, &plan.worker_mask, nullptr);
  return pid < 0 ? -error : pid;
}

}  // namespace

// Slots of the per-check uids: a check holds one from fork until it is reaped.
struct Sandbox::UidPool {
  static constexpr int kSlots = 1024;
  std::mutex mutex;
  std::condition_variable freed;
  std::vector<bool> used = std::vector<bool>(kSlots, false);

  int acquire() {
    std::unique_lock lock(mutex);
    for (;;) {
      for (int i = 0; i < kSlots; ++i) {
        if (!used[static_cast<std::size_t>(i)]) {
          used[static_cast<std::size_t>(i)] = true;
          return i;
        }
      }
      freed.wait(lock);
    }
  }
  void release(int slot) {
    {
      std::lock_guard lock(mutex);
      used[static_cast<std::size_t>(slot)] = false;
    }
    freed.notify_one();
  }
};

Sandbox::Sandbox(Mode mode, SandboxLimits limits) : mode_(mode), limits_(limits), uids_(std::make_shared<UidPool>()) {}

SandboxResult Sandbox::run(const std::vector<std::string>& argv, const std::string& workdir) const {
  SandboxResult result;
  std::vector<std::string> full;
  if (mode_ == Mode::kBubblewrap) {
    // --as-pid-1: the check is the pid namespace's init. With bwrap's own init there, bwrap
    // returns as soon as the check exits, leaving that init to be reaped by whoever reaps
    // orphans (the host's init, or the worker itself as a container's pid 1, which never does):
    // each a process of the check's uid until reaped, so checks in quick succession failed
    // with "Can't fork" at the uid's process limit. Whatever the check leaves in the namespace
    // dies with it. As init it ignores signals it has no handler for, the soft CPU limit's
    // SIGXCPU too: a CPU-bound check stops at the hard limit (SIGKILL, a second later).
    full = {"bwrap",
            "--unshare-all",
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
            "--ro-bind-try",
            "/bin",
            "/bin",
            "--ro-bind-try",
            "/sbin",
            "/sbin",
            "--ro-bind-try",
            "/lib",
            "/lib",
            "--ro-bind-try",
            "/lib64",
            "/lib64",
            "--ro-bind-try",
            "/etc",
            "/etc",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--bind",
            workdir,
            "/work",
            "--chdir",
            "/work",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/local/bin:/usr/bin:/bin",
            "--setenv",
            "HOME",
            "/work",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--setenv",
            "PYTHONDONTWRITEBYTECODE",
            "1",
            "--"};
  }
  const bool root = ::geteuid() == 0;
  // RLIMIT_NPROC counts every process of the caller's uid. As root each check runs as a uid of
  // its own, set in the child below. Not as root, the worker's uid is shared: in a cluster by
  // every container that runs as it (the chart's 10001 on the node), so a limit set before bwrap
  // would count all of them, and the sandbox failed to start ("Creating new namespace failed:
  // Resource temporarily unavailable") once they passed it. Inside bwrap's user namespace the
  // kernel (5.14 or newer) counts only that namespace's processes: util-linux's prlimit sets the
  // limit there and runs the check.
  const bool limit_inside = mode_ == Mode::kBubblewrap && !root;
  if (limit_inside) {
    const std::string n = std::to_string(limits_.processes);
    full.insert(full.end(), {"prlimit", "--nproc=" + n + ":" + n, "--"});
  }
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (auto& a : full) args.push_back(a.data());
  args.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    result.infrastructure_error = true;
    result.output = "pipe failed";
    return result;
  }
  // The child writes errno here when exec fails; a successful exec closes it (close-on-exec).
  // So "could not start the check" (the sandbox's problem) is told apart from a check that
  // itself exits 127 (the file's verdict, e.g. a script calling a missing command).
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    result.infrastructure_error = true;
    result.output = "pipe failed";
    return result;
  }
  const int slot = root ? uids_->acquire() : -1;
  struct SlotRelease {
    UidPool* pool;
    int slot;
    ~SlotRelease() {
      if (slot >= 0) pool->release(slot);
    }
  } slot_release{uids_.get(), slot};
  const uid_t check_uid = root ? static_cast<uid_t>(limits_.uid_base + slot) : ::geteuid();
  const std::string program = find_program(full.front());
  const ChildPlan plan{program.c_str(),
                       args.data(),
                       environ,
                       workdir.c_str(),
                       out[1],
                       exec_error[1],
                       {static_cast<rlim_t>(limits_.cpu_seconds), static_cast<rlim_t>(limits_.cpu_seconds + 1)},
                       {static_cast<rlim_t>(limits_.memory_bytes), static_cast<rlim_t>(limits_.memory_bytes)},
                       {static_cast<rlim_t>(limits_.processes), static_cast<rlim_t>(limits_.processes)},
                       {static_cast<rlim_t>(limits_.file_bytes), static_cast<rlim_t>(limits_.file_bytes)},
                       !limit_inside,
                       root,
                       check_uid,
                       {}};
  const auto started = std::chrono::steady_clock::now();
  int pidfd = -1;
  const pid_t pid = start_child(plan, &pidfd);
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    ::close(exec_error[0]);
    ::close(exec_error[1]);
    result.infrastructure_error = true;
    result.output = "cannot start a process: " + std::string(std::strerror(-pid));
    return result;
  }
  struct PidfdClose {
    int fd;
    ~PidfdClose() {
      if (fd >= 0) ::close(fd);
    }
  } pidfd_close{pidfd};
  ::close(out[1]);
  ::close(exec_error[1]);
  const auto deadline = started + limits_.wall;
  bool truncated = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.limit = "wall_clock";
      break;
    }
    pollfd fd{out[0], POLLIN, 0};
    const int rc = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    char buf[8192];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    if (result.output.size() < limits_.output_bytes) {
      result.output.append(
          buf, std::min<std::size_t>(static_cast<std::size_t>(n), limits_.output_bytes - result.output.size()));
    } else if (!truncated) {
      truncated = true;
      result.limit = "output";
      break;
    }
  }
  ::close(out[0]);
  if (!result.limit.empty()) ::kill(-pid, SIGKILL);
  int status = 0;
  // The output can end before the process does (it may close stdout and go on): the wall clock
  // still holds until it exits.
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (r == 0 && result.limit.empty() && std::chrono::steady_clock::now() >= deadline) {
      result.limit = "wall_clock";
      ::kill(-pid, SIGKILL);
    }
    if (r != 0) continue;
    if (pidfd >= 0) {
      // Readable when the process has exited: no polling interval added to every check.
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      pollfd exited{pidfd, POLLIN, 0};
      ::poll(&exited, 1, result.limit.empty() ? static_cast<int>(std::max<std::int64_t>(left, 1)) : 50);
    } else {
      ::usleep(2000);
    }
  }
  // Whatever the check left behind in its session (background jobs, a fork bomb's orphans) goes
  // with it; bwrap's pid namespace does the same for children that left the session.
  ::kill(-pid, SIGKILL);
  int exec_errno = 0;
  const bool exec_failed =
      ::read(exec_error[0], &exec_errno, sizeof exec_errno) == static_cast<ssize_t>(sizeof exec_errno);
  ::close(exec_error[0]);
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  // bwrap reports a child killed by a signal as exit status 128 + signal.
  if (mode_ == Mode::kBubblewrap && result.exit_code > 128 && result.exit_code < 128 + 65) {
    result.signal = result.exit_code - 128;
  }
  if (result.limit.empty()) {
    if (result.signal == SIGXCPU || result.signal == SIGKILL) {
      // SIGKILL without our timeout: the hard CPU limit.
      result.limit = "cpu_time";
    } else if (result.output.find("MemoryError") != std::string::npos ||
               result.output.find("Cannot allocate memory") != std::string::npos ||
               result.output.find("std::bad_alloc") != std::string::npos ||
               result.output.find("out of memory") != std::string::npos) {
      result.limit = "memory";
    } else if (result.output.find("Resource temporarily unavailable") != std::string::npos ||
               result.output.find("BlockingIOError") != std::string::npos ||
               result.output.find("fork: retry") != std::string::npos) {
      result.limit = "processes";
    }
  }
  // bwrap reports its own failures as "bwrap: ..." with exit status 1.
  if (mode_ == Mode::kBubblewrap && result.exit_code == 1 && result.output.rfind("bwrap: ", 0) == 0) {
    result.infrastructure_error = true;
  }
  if (result.exit_code == 125 || result.exit_code == 126 || result.exit_code == 127) {
    result.infrastructure_error = result.exit_code != 127 || mode_ == Mode::kBubblewrap;
  }
  if (exec_failed) {
    result.infrastructure_error = true;
    result.output = "cannot execute " + full.front() + ": " + std::strerror(exec_errno) +
                    (root ? " (checks run as uid " + std::to_string(check_uid) +
                                ", group nogroup: the command must be on a path anyone can read)"
                          : std::string());
  }
  if (result.limit == "wall_clock" && result.exit_code == -1 && result.signal == 0) result.signal = SIGKILL;
  return result;
}

std::string Sandbox::probe() const {
  const auto dir = std::filesystem::temp_directory_path() / ("agentline-qa-probe-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  const auto r = run({"true"}, dir.string());
  std::filesystem::remove_all(dir);
  if (r.exit_code == 0) return "";
  return "the sandbox cannot start (exit " + std::to_string(r.exit_code) + "): " + r.output.substr(0, 300);
}

}  // namespace agentline::qa
