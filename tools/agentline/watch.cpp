#include "watch.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>

#include "agentline/net/http_client.h"

namespace agentline::cli {
namespace {

using Clock = std::chrono::steady_clock;

int count_status(const nlohmann::json& job, std::initializer_list<const char*> statuses) {
  int n = 0;
  if (!job.contains("files") || !job["files"].is_object()) return 0;
  for (const auto& [path, f] : job["files"].items()) {
    const std::string s = f.value("status", "");
    for (const char* want : statuses) n += s == want;
  }
  return n;
}

// Draws `line` for a job: in place on a terminal, as a new line (only when it changed) otherwise.
class Painter {
 public:
  Painter(std::ostream& out, bool tty) : out_(out), tty_(tty) {}
  void draw(const std::string& job, const std::string& line, bool final) {
    if (!tty_) {
      if (last_[job] != line) out_ << line << "\n" << std::flush;
      last_[job] = line;
      return;
    }
    out_ << "\r" << line << "\x1b[K" << (final ? "\n" : "") << std::flush;
  }

 private:
  std::ostream& out_;
  bool tty_;
  std::map<std::string, std::string> last_;
};

struct SseState {
  std::string buffer;
  std::string event;
  std::string data;
  std::string last_id;
  bool finished = false;
  bool failed = false;
  std::string error;
  nlohmann::json doc;  // the job as the events so far describe it
  std::function<void(const nlohmann::json&, bool)> on_doc;
};

void on_line(SseState& s, const std::string& line) {
  if (line.empty()) {
    if (!s.event.empty() && !s.data.empty()) {
      auto doc = nlohmann::json::parse(s.data, nullptr, false);
      if (s.event == "error") {
        s.failed = true;
        s.error = doc.is_object() ? doc.value("error", s.data) : s.data;
      } else if (doc.is_object()) {
        // The first event of a connection is the whole job; later ones ("delta": true) the
        // summary and the files that changed.
        if (doc.value("delta", false) && s.doc.is_object()) {
          nlohmann::json files = s.doc.contains("files") ? s.doc["files"] : nlohmann::json::object();
          if (doc.contains("files") && doc["files"].is_object()) files.update(doc["files"]);
          doc.erase("delta");
          s.doc.update(doc);
          s.doc["files"] = std::move(files);
        } else {
          s.doc = std::move(doc);
        }
        s.on_doc(s.doc, s.event == "final");
        if (s.event == "final") s.finished = true;
      }
    }
    s.event.clear();
    s.data.clear();
  } else if (line.rfind("event: ", 0) == 0) {
    s.event = line.substr(7);
  } else if (line.rfind("data: ", 0) == 0) {
    s.data += line.substr(6);
  } else if (line.rfind("id: ", 0) == 0) {
    s.last_id = line.substr(4);
  }
}

bool on_bytes(SseState& s, std::string_view bytes) {
  s.buffer.append(bytes);
  for (auto pos = s.buffer.find('\n'); pos != std::string::npos; pos = s.buffer.find('\n')) {
    std::string line = s.buffer.substr(0, pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    s.buffer.erase(0, pos + 1);
    on_line(s, line);
    if (s.finished || s.failed) return false;  // ends the transfer
  }
  return true;
}

}  // namespace

bool job_finished(const nlohmann::json& job) {
  if (job.contains("complete") && job["complete"].is_boolean()) return job["complete"].get<bool>();
  const int total =
      std::max(job.value("files_total", 0), job.contains("files") ? static_cast<int>(job["files"].size()) : 0);
  return total > 0 && count_status(job, {"delivered", "dead_lettered", "upload_failed"}) == total;
}

std::string progress_line(const nlohmann::json& job, int width) {
  const int total =
      std::max(job.value("files_total", 0), job.contains("files") ? static_cast<int>(job["files"].size()) : 0);
  const int delivered = count_status(job, {"delivered"});
  const int dlq = count_status(job, {"dead_lettered", "upload_failed"});
  const int done = delivered + dlq;
  const int percent = total == 0 ? 0 : 100 * done / total;
  const auto& c = job.contains("counts") ? job["counts"] : nlohmann::json::object();
  std::ostringstream line;
  const int filled = total == 0 ? 0 : width * done / total;
  line << job.value("job_id", "?") << " [" << std::string(static_cast<std::size_t>(filled), '#')
       << std::string(static_cast<std::size_t>(width - filled), '-') << "] " << percent << "%  " << done << "/" << total
       << " files  generated " << c.value("generated", 0) << "  QA passed " << c.value("qa_passed", 0) << "  fixes "
       << c.value("fixes", 0) << "  delivered " << delivered << "  DLQ " << dlq;
  return line.str();
}

int watch_over_sse(const std::vector<std::string>& jobs, const std::string& gateway_url, const std::string& token,
                   int wait_seconds, std::ostream& out, bool tty) {
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  Painter painter(out, tty);
  bool all = true;
  for (const auto& job : jobs) {
    SseState state;
    state.on_doc = [&](const nlohmann::json& doc, bool final) { painter.draw(job, progress_line(doc), final); };
    // Reconnects (with Last-Event-ID) until the final event or the deadline.
    while (!state.finished && !state.failed && Clock::now() < deadline) {
      net::HttpRequest call;
      call.method = "GET";
      call.url = gateway_url + "/api/progress/stream/" + net::url_escape(job);
      call.headers.emplace_back("Accept", "text/event-stream");
      if (!token.empty()) call.headers.emplace_back("Authorization", "Bearer " + token);
      if (!state.last_id.empty()) call.headers.emplace_back("Last-Event-ID", state.last_id);
      call.timeout = std::max(std::chrono::milliseconds(1),
                              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      call.on_body = [&](std::string_view bytes) { return on_bytes(state, bytes); };
      const net::HttpResponse answer = net::http_call(call);
      if (answer.status == 401) {
        state.failed = true;
        state.error = "the gateway wants a token (--gateway-token-file or AGENTLINE_API_TOKEN)";
      } else if (!state.finished && !state.failed && !answer.stopped) {
        std::this_thread::sleep_for(std::chrono::seconds(1));  // dropped: resume from the last id
      }
    }
    if (state.failed) out << (tty ? "\n" : "") << job << ": " << state.error << "\n";
    if (!state.finished) {
      all = false;
      if (!state.failed) out << (tty ? "\n" : "") << job << ": not finished within " << wait_seconds << " s\n";
    }
  }
  return all ? 0 : 3;
}

int watch_by_polling(const std::vector<std::string>& jobs,
                     const std::function<std::map<std::string, nlohmann::json>()>& read, int wait_seconds,
                     std::ostream& out, bool tty) {
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  Painter painter(out, tty);
  std::map<std::string, bool> finished;
  while (Clock::now() < deadline) {
    const auto docs = read();
    bool all = true;
    for (const auto& job : jobs) {
      auto it = docs.find(job);
      if (it == docs.end()) {
        all = false;
        continue;
      }
      const bool done = job_finished(it->second);
      if (!finished[job]) painter.draw(job, progress_line(it->second), done && !tty ? false : done);
      finished[job] = finished[job] || done;
      all = all && done;
    }
    if (all) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  for (const auto& job : jobs) {
    if (!finished[job]) out << (tty ? "\n" : "") << job << ": not finished within " << wait_seconds << " s\n";
  }
  return 3;
}

}  // namespace agentline::cli
