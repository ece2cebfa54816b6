#pragma once
// The process supervisor of `agentline up`: starts child processes, restarts one that exits
// unexpectedly (exponential backoff, 1 s doubling to 30 s, reset after a minute of uptime),
// and on stop() sends SIGTERM to all, SIGKILL to those still alive after the grace period.
#include <sys/types.h>
#include <chrono>
#include <string>
#include <vector>

namespace agentline::cli {

struct ChildSpec {
  std::string name;
  std::vector<std::string> argv;  // argv[0] is the executable path
};

class Supervisor {
 public:
  explicit Supervisor(std::chrono::milliseconds stop_grace) : stop_grace_(stop_grace) {}
  ~Supervisor() { stop(); }

  void start(ChildSpec spec);
  // Reaps exited children and restarts them when due. Call regularly.
  void tick();
  // Stops children in reverse start order.
  void stop();
  int restarts() const { return restarts_; }

 private:
  struct Child {
    ChildSpec spec;
    pid_t pid = -1;
    int failures = 0;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point restart_at;
  };
  static pid_t spawn(const ChildSpec& spec);

  std::chrono::milliseconds stop_grace_;
  std::vector<Child> children_;
  int restarts_ = 0;
};

}  // namespace agentline::cli
