#include "status.h"

#include <iomanip>

#include "agentline/kafka/topic_follower.h"

namespace agentline::cli {

std::map<std::string, nlohmann::json> read_progress(const kafka::KafkaSettings& settings, const std::string& topic) {
  // jobs.progress holds a summary per job (key job_id) and a record per file (key
  // job_id/path, with a "path" field); the latest version of each wins.
  std::map<std::string, nlohmann::json> jobs;
  std::map<std::string, std::map<std::string, nlohmann::json>> files;
  kafka::TopicFollower follower(settings, topic, "agentline-status");
  follower.catch_up(
      [&](const kafka::InboundRecord& r) {
        if (!r.key) return;
        const auto slash = r.key->find('/');
        const std::string job = r.key->substr(0, slash);
        if (r.tombstone) {
          if (slash == std::string::npos) {
            jobs.erase(job);
            files.erase(job);
          } else {
            files[job].erase(r.key->substr(slash + 1));
          }
          return;
        }
        auto state = nlohmann::json::parse(r.value, nullptr, false);
        if (state.is_discarded() || !state.is_object()) return;
        if (state.contains("path") && state["path"].is_string()) {
          auto& known = files[job][state["path"].get<std::string>()];
          if (known.is_null() || known.value("version", 0) <= state.value("version", 0)) known = std::move(state);
          return;
        }
        auto& known = jobs[job];
        if (known.is_null() || known.value("version", 0) <= state.value("version", 0)) known = std::move(state);
      },
      std::chrono::seconds(30));
  for (auto& [job, doc] : jobs) {
    if (!doc.contains("files")) doc["files"] = nlohmann::json::object();
    for (auto& [path, f] : files[job]) doc["files"][path] = std::move(f);
  }
  return jobs;
}

void print_job(const nlohmann::json& job, std::ostream& out, bool files) {
  const auto& c = job["counts"];
  out << "job " << job.value("job_id", "?") << ": " << job.value("percent", 0) << "% (" << job.value("files_done", 0)
      << "/" << job.value("files_total", 0) << " files done)  submitted " << c.value("submitted", 0) << ", generated "
      << c.value("generated", 0) << ", QA passed " << c.value("qa_passed", 0) << ", QA failed "
      << c.value("qa_failed", 0) << ", fixes " << c.value("fixes", 0) << ", delivered " << c.value("delivered", 0)
      << ", dead-lettered " << c.value("dead_lettered", 0) << "\n";
  if (job.contains("usage") || job.contains("budget")) {
    // What the job's LLM calls cost, against its budget (docs/llm-economics.md).
    const auto usage = job.value("usage", nlohmann::json::object());
    out << "  spent " << usage.value("tokens", std::int64_t{0}) << " tokens, $" << std::fixed << std::setprecision(4)
        << usage.value("cost_usd", 0.0) << std::defaultfloat;
    if (job.contains("budget") && job["budget"].is_object()) {
      const auto& b = job["budget"];
      out << "  budget";
      if (b.contains("tokens")) out << " " << b.value("tokens", std::int64_t{0}) << " tokens";
      if (b.contains("cost_usd"))
        out << " $" << std::fixed << std::setprecision(4) << b.value("cost_usd", 0.0) << std::defaultfloat;
      if (b.value("exhausted", false))
        out << "  EXHAUSTED: the job's remaining work is dead-lettered (budget_exhausted)";
    }
    out << "\n";
  }
  if (job.contains("job_check") && job["job_check"].is_object()) {
    // The job checked as a whole (docs/qa.md).
    const auto& jc = job["job_check"];
    out << "  job check " << jc.value("state", "?") << " (round " << jc.value("attempt", 0) + 1 << ")";
    const char* sep = ": ";
    for (const auto& check : jc.value("checks", nlohmann::json::array())) {
      out << sep << check.value("name", "?") << " " << check.value("outcome", "?");
      if (check.contains("note")) out << " (" << check.value("note", "") << ")";
      sep = ", ";
    }
    if (jc.contains("reason")) out << "  " << jc.value("reason", "");
    out << "\n";
    for (const auto& d : jc.value("diagnostics", nlohmann::json::array())) {
      out << "    " << d.value("file", "") << (d.contains("line") ? ":" + d["line"].dump() : "") << " "
          << d.value("severity", "error") << " [" << d.value("check", "") << "] " << d.value("message", "") << "\n";
    }
  }
  if (!files || !job.contains("files")) return;
  for (const auto& [path, f] : job["files"].items()) {
    out << "  " << std::left << std::setw(14) << f.value("status", "?") << " " << path;
    if (f.value("fix_attempt", 0) > 0) out << "  (fix " << f.value("fix_attempt", 0) << ")";
    if (f.contains("usage") && f["usage"].is_object()) {
      out << "  " << f["usage"].value("tokens", std::int64_t{0}) << " tokens $" << std::fixed << std::setprecision(4)
          << f["usage"].value("cost_usd", 0.0) << std::defaultfloat;
    }
    if (f.contains("reason")) out << "  " << f["reason"].get<std::string>();
    out << "\n";
  }
}

}  // namespace agentline::cli
