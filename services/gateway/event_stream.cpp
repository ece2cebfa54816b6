#include <chrono>
#include <string_view>
#include <thread>

#include "gateway_impl.h"

namespace agentline::gateway {

// The contract is in gateway_impl.h.
void Gateway::Impl::stream(HttpExchange& x, const std::string& job_id) {
  if (streams.load() >= config.max_streams) return error(x, 503, "too many open streams");
  std::int64_t last = -1;
  std::string resume = x.header("Last-Event-ID");
  if (resume.empty()) resume = x.param("last_event_id");
  if (!resume.empty()) {
    if (resume.size() > 18 || resume.find_first_not_of("0123456789") != std::string::npos) {
      return error(x, 400, "Last-Event-ID must be an event id (digits)");
    }
    last = std::stoll(resume);
  }
  ++streams;
  open_streams->Increment();
  struct Closer {
    Impl* self;
    ~Closer() {
      --self->streams;
      self->open_streams->Decrement();
    }
  } closer{this};
  if (!x.begin(200, "text/event-stream", {{"Connection", "close"}, {"X-Accel-Buffering", "no"}}) ||
      !x.write("retry: 2000\n\n"))
    return;
  auto write = [&](std::string_view text) { return x.write(text); };
  // The document goes out in pieces as it is put together (a 10,000-file job is ~2 MB).
  auto write_event = [&](const JobSnapshot& snap, const char* type) {
    return write("id: " + std::to_string(snap.sequence) + "\nevent: " + type + "\ndata: ") && snap.write(write) &&
           write("\n\n");
  };
  const auto appear_deadline = std::chrono::steady_clock::now() + config.unknown_job_wait;
  auto next_beat = std::chrono::steady_clock::now() + config.heartbeat;
  bool sent_document = false;  // the first event is the whole document, later ones changes
  while (!stopping.load()) {
    const auto now = std::chrono::steady_clock::now();
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(next_beat - now, std::chrono::steady_clock::duration::zero()));
    auto snap =
        view.wait_for_change(job_id, last, std::min(wait, std::chrono::milliseconds(1000)), sent_document ? last : -1);
    if (stopping.load()) break;
    if (snap && snap->sequence > last) {
      last = snap->sequence;
      if (sent_document) snap->summary["delta"] = true;
      sent_document = true;
      if (!write_event(*snap, snap->complete ? "final" : "progress")) return;
      next_beat = std::chrono::steady_clock::now() + config.heartbeat;
      if (snap->complete) return;
      // The changes of the next interval go out as one event (a 10,000-file job changes
      // thousands of times a minute; a reader needs a few updates a second).
      const auto quiet_until = std::chrono::steady_clock::now() + config.min_event_interval;
      while (!stopping.load() && std::chrono::steady_clock::now() < quiet_until)
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            quiet_until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
      continue;
    }
    if (snap && snap->complete && last >= snap->sequence) {
      // Resumed after the final event: say so once more (the whole document) and end.
      if (sent_document) snap = view.job(job_id);
      if (snap) write_event(*snap, "final");
      return;
    }
    if (!snap && std::chrono::steady_clock::now() >= appear_deadline) {
      write("event: error\ndata: " + dump(Json{{"error", "no job " + job_id + " on jobs.progress"}}) + "\n\n");
      return;
    }
    if (std::chrono::steady_clock::now() >= next_beat) {
      if (!write(": heartbeat\n\n")) return;  // the client went away
      next_beat = std::chrono::steady_clock::now() + config.heartbeat;
    }
  }
  write("event: error\ndata: {\"error\": \"the gateway is shutting down\"}\n\n");
}

}  // namespace agentline::gateway
