#include <chrono>
#include <string_view>
#include <thread>

#include "gateway_impl.h"

namespace agentline::gateway {

// GET /api/progress/stream/{id}: "progress" events (id: the job's sequence), "final" once every
// file reached its end, "error" for a job that never appears; a comment line as heartbeat.
// The first event of a connection carries the whole job document; every later one only what
// changed since the event before — the summary and the files that changed, marked
// "delta": true — so a 10,000-file job costs a client its changes, not its size per event.
// Last-Event-ID (header or ?last_event_id=) resumes: a client that has seen the job's current
// sequence gets nothing until it changes; otherwise the first event is the document again.
int Gateway::Impl::stream(const Request& req, const std::string& job_id) {
  if (streams.load() >= config.max_streams) return error(req, "stream", 503, "too many open streams");
  std::int64_t last = -1;
  std::string resume = req.header("Last-Event-ID");
  if (resume.empty()) resume = req.param("last_event_id");
  if (!resume.empty()) {
    if (resume.size() > 18 || resume.find_first_not_of("0123456789") != std::string::npos) {
      return error(req, "stream", 400, "Last-Event-ID must be an event id (digits)");
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
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n"
      "X-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";
  requests->Add({{"route", "stream"}, {"code", "200"}}).Increment();
  if (mg_write(req.conn, head.data(), head.size()) <= 0) return 200;
  auto write = [&](std::string_view text) { return mg_write(req.conn, text.data(), text.size()) > 0; };
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
      if (!write_event(*snap, snap->complete ? "final" : "progress")) return 200;
      next_beat = std::chrono::steady_clock::now() + config.heartbeat;
      if (snap->complete) return 200;
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
      return 200;
    }
    if (!snap && std::chrono::steady_clock::now() >= appear_deadline) {
      write("event: error\ndata: " + dump(Json{{"error", "no job " + job_id + " on jobs.progress"}}) + "\n\n");
      return 200;
    }
    if (std::chrono::steady_clock::now() >= next_beat) {
      if (!write(": heartbeat\n\n")) return 200;  // the client went away
      next_beat = std::chrono::steady_clock::now() + config.heartbeat;
    }
  }
  write("event: error\ndata: {\"error\": \"the gateway is shutting down\"}\n\n");
  return 200;
}

}  // namespace agentline::gateway
