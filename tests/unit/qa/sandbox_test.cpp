// The QA sandbox: what it reports when a check cannot start, what it cleans up after a check, and
// that bubblewrap leaves no process behind. (Containment itself is tested with bubblewrap in the
// integration tier: GenerationLoopTest.TheSandboxContainsHostileFiles.)
#include "sandbox.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using agentline::qa::Sandbox;
using agentline::qa::SandboxLimits;

namespace {

// A work directory anyone can write: as root, checks run as an unprivileged uid.
struct WorkDir {
  fs::path path = fs::temp_directory_path() / ("agentline-sandbox-test-" + std::to_string(::getpid()));
  WorkDir() {
    fs::create_directories(path);
    fs::permissions(path, fs::perms::all);
  }
  ~WorkDir() { fs::remove_all(path); }
};

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

// This process's children that have exited and wait to be reaped.
std::vector<pid_t> zombie_children() {
  std::vector<pid_t> out;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    for (pid_t pid = 0; children >> pid;) {
      if (process_gone(pid)) out.push_back(pid);
    }
  }
  return out;
}

}  // namespace

// Where the worker reaps orphans (a container's pid 1, or a subreaper as here), every process a
// check leaves behind stays a zombie of the check's uid, counted against its process limit: with
// bubblewrap's own init in the sandbox, checks began to fail with "Can't fork" after about as
// many checks as the limit allows (--check-processes, 64).
TEST(Sandbox, BubblewrapChecksLeaveNoProcessBehindToCountAgainstTheProcessLimit) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: as another user the limit counts all of that user's processes";
  SandboxLimits limits;
  limits.processes = 8;
  const Sandbox sandbox(Sandbox::Mode::kBubblewrap, limits);
  ASSERT_EQ(sandbox.probe(), "") << "bubblewrap must work here (scripts/install-deps.sh installs it)";
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  struct Restore {
    ~Restore() {
      ::prctl(PR_SET_CHILD_SUBREAPER, 0);
      for (const pid_t pid : zombie_children()) ::waitpid(pid, nullptr, WNOHANG);
    }
  } restore;
  WorkDir dir;
  for (int i = 0; i < 3 * limits.processes; ++i) {
    const auto r = sandbox.run({"true"}, dir.path.string());
    ASSERT_FALSE(r.infrastructure_error) << "check " << i << ": " << r.output;
    ASSERT_EQ(r.exit_code, 0) << "check " << i << ": " << r.output;
  }
  EXPECT_EQ(zombie_children().size(), 0u) << "processes of finished checks left for the reaper";
}

TEST(Sandbox, ACommandThatCannotStartIsTheSandboxsProblemNotTheFiles) {
  WorkDir dir;
  const auto r = Sandbox(Sandbox::Mode::kNone, SandboxLimits{})
                     .run({"/nonexistent/agentline-check", "file.py"}, dir.path.string());
  EXPECT_TRUE(r.infrastructure_error) << "a check that never ran must not become a QA verdict on the file";
  EXPECT_NE(r.output.find("cannot execute /nonexistent/agentline-check"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("No such file"), std::string::npos) << r.output;
}

TEST(Sandbox, ACheckThatItselfExits127IsTheFilesVerdict) {
  WorkDir dir;
  const auto r = Sandbox(Sandbox::Mode::kNone, SandboxLimits{})
                     .run({"sh", "-c", "echo 'missing-tool: not found' >&2; exit 127"}, dir.path.string());
  EXPECT_FALSE(r.infrastructure_error) << r.output;
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.output.find("missing-tool: not found"), std::string::npos);
}

TEST(Sandbox, WhatACheckLeavesRunningInTheBackgroundIsKilledWithIt) {
  WorkDir dir;
  const auto r =
      Sandbox(Sandbox::Mode::kNone, SandboxLimits{})
          .run({"sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $! > sleeper.pid; echo done"}, dir.path.string());
  ASSERT_FALSE(r.infrastructure_error) << r.output;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.limit, "") << "the check itself finished at once";
  pid_t sleeper = 0;
  std::ifstream(dir.path / "sleeper.pid") >> sleeper;
  ASSERT_GT(sleeper, 0);
  // SIGKILL is delivered at once; reaping by init may lag a moment.
  bool gone = false;
  for (int i = 0; i < 100 && !(gone = process_gone(sleeper)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(gone) << "the background sleep " << sleeper << " outlived its check";
}

// Not as root (the chart runs every container as 10001), RLIMIT_NPROC would count every process
// of the worker's uid, the other containers' on the node too: with more of them than the limit,
// every check failed to start ("bwrap: Creating new namespace failed: Resource temporarily
// unavailable", found running the chart's eight containers). The limit is set inside the
// sandbox's user namespace, so it counts the check's processes only, and still binds them.
TEST(Sandbox, AsAnotherUserTheProcessLimitCountsOnlyTheChecksOwnProcesses) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "forks the test process and starts threads in the child, which ThreadSanitizer does not follow";
#endif
  WorkDir dir;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A uid of this test's own that already runs more threads than the limit, as the other
    // containers of a node do.
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(201999) != 0) ::_exit(10);
    SandboxLimits limits;
    limits.processes = 16;
    std::vector<std::thread> others;
    for (int i = 0; i < 24; ++i) others.emplace_back([] { ::pause(); });
    const Sandbox sandbox(Sandbox::Mode::kBubblewrap, limits);
    const auto ok = sandbox.run({"sh", "-c", "echo started"}, dir.path.string());
    if (ok.infrastructure_error || ok.exit_code != 0) {
      std::fprintf(stderr, "the check did not start: %s\n", ok.output.c_str());
      ::_exit(11);
    }
    const auto bomb = sandbox.run(
        {"python3", "-c",
         "import os, time\nfor i in range(64):\n    if os.fork() == 0:\n        time.sleep(5)\n        os._exit(0)\n"},
        dir.path.string());
    if (bomb.limit != "processes") {
      std::fprintf(stderr, "64 processes were not stopped at 16: exit %d, limit '%s': %s\n", bomb.exit_code,
                   bomb.limit.c_str(), bomb.output.c_str());
      ::_exit(12);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: cannot become uid 201999; 11: a check did not start beside the uid's "
                                       "other threads; 12: the check's processes were not limited";
}
