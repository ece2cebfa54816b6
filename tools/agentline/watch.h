#pragma once
// `agentline submit --wait`: follows the submitted jobs to their end and draws a progress bar
// per job. With a gateway it reads the job's Server-Sent Events (/api/progress/stream/J, the
// stream the job page uses), resuming with Last-Event-ID when the connection drops; without
// one, it polls jobs.progress.
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace agentline::cli {

// One line: "todo-api [#####-----] 50%  10/20 files  generated 15  QA passed 12  delivered 10  DLQ 0".
std::string progress_line(const nlohmann::json& job, int width = 30);
// True once every file is delivered, failed delivery or was dead-lettered.
bool job_finished(const nlohmann::json& job);

// Returns 0 when every job finished within wait_seconds, 3 otherwise.
int watch_over_sse(const std::vector<std::string>& jobs, const std::string& gateway_url, const std::string& token,
                   int wait_seconds, std::ostream& out, bool tty);
// `read` gives the current documents of all jobs (jobs.progress folded).
int watch_by_polling(const std::vector<std::string>& jobs,
                     const std::function<std::map<std::string, nlohmann::json>()>& read, int wait_seconds,
                     std::ostream& out, bool tty);

}  // namespace agentline::cli
