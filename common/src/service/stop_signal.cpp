#include "agentline/service/stop_signal.h"

#include <atomic>
#include <csignal>

namespace agentline::service {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<void (*)()> g_hook{nullptr};

void on_signal(int) {
  g_stop.store(true);
  if (auto* hook = g_hook.load()) hook();
}

}  // namespace

void install_stop_signals(void (*hook)()) {
  g_hook.store(hook);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool stop_requested() { return g_stop.load(); }

}  // namespace agentline::service
