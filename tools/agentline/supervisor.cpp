#include "supervisor.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "agentline/resilience/retry_schedule.h"

namespace agentline::cli {

using Clock = std::chrono::steady_clock;

pid_t Supervisor::spawn(const ChildSpec& spec) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "cannot exec %s\n", argv[0]);
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed for " + spec.name);
  return pid;
}

void Supervisor::start(ChildSpec spec) {
  Child child{std::move(spec)};
  child.pid = spawn(child.spec);
  child.started = Clock::now();
  spdlog::info("started {} (pid {})", child.spec.name, child.pid);
  children_.push_back(std::move(child));
}

void Supervisor::tick() {
  for (auto& child : children_) {
    if (child.pid > 0) {
      int status = 0;
      if (::waitpid(child.pid, &status, WNOHANG) != child.pid) continue;
      if (Clock::now() - child.started > std::chrono::minutes(1)) child.failures = 0;
      ++child.failures;
      auto delay = resilience::exponential_delay(child.failures, std::chrono::seconds(1), std::chrono::seconds(30));
      if (WIFSIGNALED(status)) {
        spdlog::error("{} (pid {}) killed by signal {}; restarting in {} ms", child.spec.name, child.pid,
                      WTERMSIG(status), delay.count());
      } else {
        spdlog::error("{} (pid {}) exited with {}; restarting in {} ms", child.spec.name, child.pid,
                      WEXITSTATUS(status), delay.count());
      }
      child.pid = -1;
      child.restart_at = Clock::now() + delay;
    } else if (Clock::now() >= child.restart_at) {
      child.pid = spawn(child.spec);
      child.started = Clock::now();
      ++restarts_;
      spdlog::info("restarted {} (pid {})", child.spec.name, child.pid);
    }
  }
}

void Supervisor::stop() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (it->pid <= 0) continue;
    ::kill(it->pid, SIGTERM);
    auto deadline = Clock::now() + stop_grace_;
    int status = 0;
    while (::waitpid(it->pid, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        spdlog::warn("{} did not stop within {} ms; killing it", it->spec.name, stop_grace_.count());
        ::kill(it->pid, SIGKILL);
        ::waitpid(it->pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (WIFEXITED(status)) spdlog::info("{} stopped (exit {})", it->spec.name, WEXITSTATUS(status));
    it->pid = -1;
  }
  children_.clear();
}

}  // namespace agentline::cli
