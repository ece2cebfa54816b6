#include "sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace agentline::qa {

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
    full = {"bwrap",
            "--unshare-all",
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
  const bool root = ::geteuid() == 0;
  const int slot = root ? uids_->acquire() : -1;
  struct SlotRelease {
    UidPool* pool;
    int slot;
    ~SlotRelease() {
      if (slot >= 0) pool->release(slot);
    }
  } slot_release{uids_.get(), slot};
  const uid_t check_uid = root ? static_cast<uid_t>(limits_.uid_base + slot) : ::geteuid();
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    ::close(exec_error[0]);
    ::close(exec_error[1]);
    result.infrastructure_error = true;
    result.output = "fork failed";
    return result;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    ::setsid();
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (::chdir(workdir.c_str()) != 0) ::_exit(125);
    rlimit cpu{static_cast<rlim_t>(limits_.cpu_seconds), static_cast<rlim_t>(limits_.cpu_seconds + 1)};
    rlimit as{static_cast<rlim_t>(limits_.memory_bytes), static_cast<rlim_t>(limits_.memory_bytes)};
    rlimit nproc{static_cast<rlim_t>(limits_.processes), static_cast<rlim_t>(limits_.processes)};
    rlimit fsize{static_cast<rlim_t>(limits_.file_bytes), static_cast<rlim_t>(limits_.file_bytes)};
    ::setrlimit(RLIMIT_CPU, &cpu);
    ::setrlimit(RLIMIT_AS, &as);
    ::setrlimit(RLIMIT_FSIZE, &fsize);
    if (root) {
      // RLIMIT_NPROC does not bind root: run as a uid of this check's own.
      ::setgroups(0, nullptr);
      if (::setgid(65534) != 0 || ::setuid(check_uid) != 0) ::_exit(126);
    }
    ::setrlimit(RLIMIT_NPROC, &nproc);
    ::execvp(args[0], args.data());
    const int error = errno;
    [[maybe_unused]] const auto written = ::write(exec_error[1], &error, sizeof error);
    ::_exit(127);
  }
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
    if (r == 0) ::usleep(2000);
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
