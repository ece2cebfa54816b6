#include "status.h"

#include <iomanip>

#include "agentline/kafka/topic_follower.h"

namespace agentline::cli {

std::map<std::string, nlohmann::json> read_progress(const kafka::KafkaSettings& settings, const std::string& topic) {
  std::map<std::string, nlohmann::json> jobs;
  kafka::TopicFollower follower(settings, topic, "agentline-status");
  follower.catch_up(
      [&](const kafka::InboundRecord& r) {
        if (!r.key) return;
        if (r.tombstone) {
          jobs.erase(*r.key);
          return;
        }
        auto state = nlohmann::json::parse(r.value, nullptr, false);
        if (state.is_discarded() || !state.is_object()) return;
        auto& known = jobs[*r.key];
        if (known.is_null() || known.value("version", 0) <= state.value("version", 0)) known = std::move(state);
      },
      std::chrono::seconds(30));
  return jobs;
}

void print_job(const nlohmann::json& job, std::ostream& out, bool files) {
  const auto& c = job["counts"];
  out << "job " << job.value("job_id", "?") << ": " << job.value("percent", 0) << "% (" << job.value("files_done", 0) << "/"
      << job.value("files_total", 0) << " files done)  submitted " << c.value("submitted", 0) << ", generated "
      << c.value("generated", 0) << ", QA passed " << c.value("qa_passed", 0) << ", QA failed " << c.value("qa_failed", 0)
      << ", fixes " << c.value("fixes", 0) << ", delivered " << c.value("delivered", 0) << ", dead-lettered "
      << c.value("dead_lettered", 0) << "\n";
  if (!files || !job.contains("files")) return;
  for (const auto& [path, f] : job["files"].items()) {
    out << "  " << std::left << std::setw(14) << f.value("status", "?") << " " << path;
    if (f.value("fix_attempt", 0) > 0) out << "  (fix " << f.value("fix_attempt", 0) << ")";
    if (f.contains("reason")) out << "  " << f["reason"].get<std::string>();
    out << "\n";
  }
}

}  // namespace agentline::cli
