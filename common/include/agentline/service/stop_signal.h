#pragma once
// SIGTERM and SIGINT, handled one way in every binary: the handler sets a flag and calls the
// hook, nothing else (the hook must be async-signal-safe: an atomic store). Threads poll
// stop_requested() or are told by the hook.
namespace agentline::service {

// Installs the handlers; calling it again replaces the hook.
void install_stop_signals(void (*hook)() = nullptr);
bool stop_requested();

}  // namespace agentline::service
