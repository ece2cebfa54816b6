#include "job_progress.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "agentline/events/timestamps.h"

namespace agentline::router {
namespace {

bool is_end(const std::string& status) {
  return status == "qa_passed" || status == "delivered" || status == "dead_lettered" || status == "upload_failed";
}

// How far a file is within one attempt (fix_attempt); with the attempt, the order a file's
// steps happen in. A step at or behind where the file is can only be a redelivered or replayed
// event: it changes nothing (a replayed FILE_COMPLETED took a delivered file back to
// "generated" for good; a replayed QA_PASSED counted twice).
int rank(const std::string& status) {
  static const std::map<std::string, int> kRank{{"waiting", 0},       {"submitted", 1},  {"released", 1},
                                                {"fixing", 1},        {"generated", 2},  {"generation_failed", 2},
                                                {"qa_failed", 3},     {"replanning", 4}, {"qa_passed", 5},
                                                {"upload_failed", 6}, {"delivered", 7},  {"dead_lettered", 8}};
  auto it = kRank.find(status);
  return it == kRank.end() ? 0 : it->second;
}

// The status a step moves a file to (a submission keeps the status it has).
const char* status_of(JobProgress::Step step) {
  using Step = JobProgress::Step;
  switch (step) {
    case Step::kSubmitted:
      return nullptr;
    case Step::kGenerated:
      return "generated";
    case Step::kGenerationFailed:
      return "generation_failed";
    case Step::kQaPassed:
      return "qa_passed";
    case Step::kQaFailed:
      return "qa_failed";
    case Step::kFixRequested:
      return "fixing";
    case Step::kDelivered:
      return "delivered";
    case Step::kUploadFailed:
      return "upload_failed";
    case Step::kDeadLettered:
      return "dead_lettered";
    case Step::kPlanned:
      return "waiting";
    case Step::kReleased:
      return "released";
    case Step::kReplanning:
      return "replanning";
  }
  return nullptr;
}

bool is_one_of(const std::string& status, std::initializer_list<const char*> set) {
  for (const char* s : set) {
    if (status == s) return true;
  }
  return false;
}

}  // namespace

void JobProgress::Tally::add(const nlohmann::json& file, int sign) {
  if (!file.is_object()) return;
  const std::string status = file.value("status", "");
  const int attempt = file.value("fix_attempt", 0);
  const bool fixed = attempt > 0;  // a file sent back for a fix was generated and failed QA before
  submitted += sign * (status != "waiting");
  planned += sign * file.contains("depends_on");
  generated +=
      sign *
      (fixed || is_one_of(status, {"generated", "qa_failed", "replanning", "qa_passed", "upload_failed", "delivered"}));
  generation_failed += sign * (status == "generation_failed");
  qa_failed += sign * (fixed || is_one_of(status, {"qa_failed", "fixing", "replanning"}));
  qa_passed += sign * is_one_of(status, {"qa_passed", "upload_failed", "delivered"});
  delivered += sign * (status == "delivered");
  upload_failed += sign * (status == "upload_failed");
  dead_lettered += sign * (status == "dead_lettered");
  done += sign * is_end(status);
  fixes += sign * attempt;
  replans += sign * file.value("replans", 0);
  if (const auto usage = file.find("usage"); usage != file.end() && usage->is_object()) {
    tokens += sign * usage->value("tokens", std::int64_t{0});
    cost_usd += sign * usage->value("cost_usd", 0.0);
  }
}

UsageCharge UsageCharge::of(const nlohmann::json& usage) {
  events::EventEnvelope::Usage fields;
  if (!usage.is_object()) return {};
  for (auto [key, field] :
       {std::pair{"prompt_tokens", &fields.prompt_tokens}, std::pair{"completion_tokens", &fields.completion_tokens},
        std::pair{"cost_usd", &fields.cost_usd}}) {
    const auto it = usage.find(key);
    if (it != usage.end() && it->is_number()) *field = it->get<double>();
  }
  return of(fields);
}

UsageCharge UsageCharge::of(const events::EventEnvelope::Usage& usage) {
  UsageCharge c;
  c.tokens = static_cast<std::int64_t>(std::max(0.0, usage.prompt_tokens) + std::max(0.0, usage.completion_tokens));
  c.cost_usd = std::max(0.0, usage.cost_usd);
  return c;
}

void JobProgress::Tally::write(nlohmann::json& counts) const {
  if (!counts.is_object()) counts = nlohmann::json::object();
  for (const auto& [name, value] :
       {std::pair{"submitted", submitted}, std::pair{"generated", generated},
        std::pair{"generation_failed", generation_failed}, std::pair{"qa_passed", qa_passed},
        std::pair{"qa_failed", qa_failed}, std::pair{"fixes", fixes}, std::pair{"delivered", delivered},
        std::pair{"upload_failed", upload_failed}, std::pair{"dead_lettered", dead_lettered},
        std::pair{"planned", planned}, std::pair{"replans", replans}}) {
    counts[name] = value;
  }
}

JobProgress::Job& JobProgress::job_locked(Shard& shard, const std::string& job_id) {
  auto& job = shard.jobs[job_id];
  if (job.summary.is_null()) {
    job.summary = {{"job_id", job_id}, {"files_total", 0}, {"files_done", 0}, {"percent", 0}, {"version", 0}};
    job.tally.write(job.summary["counts"]);
  }
  return job;
}

void JobProgress::set_file_locked(Job& job, const std::string& path, nlohmann::json file) {
  auto& slot = job.files[path];
  job.tally.add(slot, -1);
  job.tally.add(file, +1);
  slot = std::move(file);
}

void JobProgress::refresh_locked(Job& job) {
  // Counters follow from the files' states: a redelivered event cannot count twice, and none
  // can pass the number of files (fixes and replans are attempt numbers, summed).
  const int total = static_cast<int>(job.files.size());
  job.tally.write(job.summary["counts"]);
  job.summary["files_total"] = total;
  job.summary["files_done"] = job.tally.done;
  job.summary["percent"] = total == 0 ? 0 : (100 * job.tally.done) / total;
  std::int64_t tokens = job.tally.tokens;
  double cost = job.tally.cost_usd;
  if (const auto plan = job.summary.find("plan_usage"); plan != job.summary.end() && plan->is_object()) {
    for (const auto& [event, c] : plan->items()) {
      tokens += c.value("tokens", std::int64_t{0});
      cost += c.value("cost_usd", 0.0);
    }
  }
  if (tokens > 0 || cost > 0 || job.summary.contains("usage")) {
    job.summary["usage"] = {{"tokens", tokens}, {"cost_usd", cost}};
  }
  if (auto budget = job.summary.find("budget"); budget != job.summary.end() && budget->is_object()) {
    const auto max_tokens = budget->value("tokens", std::int64_t{0});
    const auto max_cost = budget->value("cost_usd", 0.0);
    (*budget)["exhausted"] = (max_tokens > 0 && tokens >= max_tokens) || (max_cost > 0 && cost >= max_cost);
  }
}

JobProgress::Update JobProgress::apply(const std::string& job_id, const std::string& task_id, const std::string& path,
                                       Step step, const std::string& reason, int fix_attempt,
                                       const nlohmann::json& details, bool replay, const Charge& charge) {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  Job& job = job_locked(jobs, job_id);
  auto it = job.files.find(path);
  const bool known = it != job.files.end();
  if (known && step == Step::kSubmitted) return {nullptr, nullptr};  // a redelivered submission
  if (known && !replay && step != Step::kPlanned) {
    const auto& current = it->second;
    const bool same_task = current.value("task_id", "") == task_id;
    // A planned file's replan gives it a new task id: events of the round before are stale.
    if (!same_task && current.contains("depends_on")) return {nullptr, nullptr};
    const int attempt = current.value("fix_attempt", 0);
    const int next_attempt = fix_attempt >= 0 ? fix_attempt : attempt;
    // Another task for the same path (a new version of the file) counts from its own start.
    if (same_task &&
        std::pair(next_attempt, rank(status_of(step))) <= std::pair(attempt, rank(current.value("status", ""))))
      return {nullptr, nullptr};
  }
  // Changed in place: the file's share of the counters is taken away first and added back after.
  nlohmann::json& file = known ? it->second : job.files[path];
  if (known) {
    job.tally.add(file, -1);
  } else {
    file = {{"job_id", job_id}, {"path", path}, {"task_id", task_id}, {"status", "submitted"}, {"fix_attempt", 0}};
  }
  const char* status = status_of(step);
  if (step == Step::kReplanning) file["replans"] = file.value("replans", 0) + 1;
  if (details.is_object()) {
    for (const auto& [k, v] : details.items()) file[k] = v;
  }
  if (known) file["task_id"] = task_id;
  if (status) file["status"] = status;
  if (!reason.empty()) file["reason"] = reason;
  if (reason.empty() && replay && status) file.erase("reason");  // replayed: why it failed before is past
  if (fix_attempt >= 0) file["fix_attempt"] = fix_attempt;
  if (charge.any()) {
    auto& usage = file["usage"];
    if (!usage.is_object()) usage = {{"tokens", 0}, {"cost_usd", 0.0}};
    usage["tokens"] = usage.value("tokens", std::int64_t{0}) + charge.tokens;
    usage["cost_usd"] = usage.value("cost_usd", 0.0) + charge.cost_usd;
  }
  const std::string now = events::now_iso8601();
  const std::int64_t version = job.summary.value("version", std::int64_t{0}) + 1;
  job.summary["version"] = version;
  job.summary["updated_at"] = now;
  file["version"] = version;
  file["updated_at"] = now;
  job.tally.add(file, +1);
  refresh_locked(job);
  return {job.summary, file};
}

JobProgress::Update JobProgress::set_section(const std::string& job_id, const std::string& section,
                                             const nlohmann::json& plan, bool replace) {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  Job& job = job_locked(jobs, job_id);
  auto& current = job.summary[section];
  if (!current.is_object() || replace) current = nlohmann::json::object();
  for (const auto& [k, v] : plan.items()) current[k] = v;
  const std::int64_t version = job.summary.value("version", std::int64_t{0}) + 1;
  job.summary["version"] = version;
  job.summary["updated_at"] = events::now_iso8601();
  refresh_locked(job);
  return {job.summary, nullptr};
}

JobProgress::Update JobProgress::charge_job(const std::string& job_id, const std::string& event_id,
                                            const Charge& charge) {
  if (!charge.any()) return {nullptr, nullptr};
  {
    Shard& jobs = shard(job_id);
    std::lock_guard lock(jobs.mu);
    auto it = jobs.jobs.find(job_id);
    if (it != jobs.jobs.end()) {
      const auto plan = it->second.summary.find("plan_usage");
      if (plan != it->second.summary.end() && plan->is_object() && plan->contains(event_id)) return {nullptr, nullptr};
    }
  }
  return set_section(job_id, "plan_usage", {{event_id, {{"tokens", charge.tokens}, {"cost_usd", charge.cost_usd}}}});
}

void JobProgress::set_tenant(const std::string& job_id, const std::string& tenant) {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  Job& job = job_locked(jobs, job_id);
  if (!job.summary.contains("tenant")) job.summary["tenant"] = tenant;
}

bool JobProgress::has_section(const std::string& job_id, const std::string& section) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  return it != jobs.jobs.end() && it->second.summary.contains(section);
}

void JobProgress::load(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("job_id") || !record["job_id"].is_string()) return;
  const std::string& job_id = record["job_id"].get_ref<const std::string&>();
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  Job& job = job_locked(jobs, job_id);
  const std::int64_t version = record.value("version", std::int64_t{0});
  if (record.contains("path") && record["path"].is_string()) {
    const std::string path = record["path"];
    auto it = job.files.find(path);
    if (it == job.files.end() || it->second.value("version", std::int64_t{0}) <= version)
      set_file_locked(job, path, record);
  } else if (job.summary.value("version", std::int64_t{0}) <= version && record.contains("counts")) {
    job.summary = record;
    job.summary.erase("files");  // a record of the former format carried them inline
    if (record.contains("files") && record["files"].is_object()) {
      for (const auto& [path, f] : record["files"].items()) {
        nlohmann::json file = f;
        file["job_id"] = record["job_id"];
        file["path"] = path;
        file["version"] = version;
        set_file_locked(job, path, std::move(file));
      }
    }
  }
  // The job's version never goes back below a file's.
  if (job.summary.value("version", std::int64_t{0}) < version) job.summary["version"] = version;
  refresh_locked(job);
}

std::vector<std::pair<std::string, std::vector<std::string>>> JobProgress::expire(const std::string& older_than) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (Shard& jobs : shards_) {
    std::lock_guard lock(jobs.mu);
    expire_locked(jobs, older_than, out);
  }
  return out;
}

void JobProgress::expire_locked(Shard& jobs, const std::string& older_than,
                                std::vector<std::pair<std::string, std::vector<std::string>>>& out) {
  for (auto it = jobs.jobs.begin(); it != jobs.jobs.end();) {
    const Job& job = it->second;
    const auto& plan = job.summary.contains("plan") ? job.summary["plan"] : nlohmann::json();
    const bool plan_dead = plan.is_object() && plan.value("status", "") == "dead_lettered";
    const int finished = job.tally.delivered + job.tally.upload_failed + job.tally.dead_lettered;
    const bool ended = job.files.empty() ? plan_dead : finished == static_cast<int>(job.files.size());
    if (!ended || job.summary.value("updated_at", std::string()) >= older_than) {
      ++it;
      continue;
    }
    std::vector<std::string> keys;
    keys.reserve(job.files.size() + 1);
    for (const auto& [path, file] : job.files) keys.push_back(it->first + "/" + path);
    keys.push_back(it->first);
    out.emplace_back(it->first, std::move(keys));
    it = jobs.jobs.erase(it);
  }
}

void JobProgress::drop(const std::string& key) {
  const auto slash = key.find('/');
  const std::string job_id = key.substr(0, slash);
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  if (it == jobs.jobs.end()) return;
  if (slash == std::string::npos) {
    jobs.jobs.erase(it);
    return;
  }
  auto file = it->second.files.find(key.substr(slash + 1));
  if (file == it->second.files.end()) return;
  it->second.tally.add(file->second, -1);
  it->second.files.erase(file);
  refresh_locked(it->second);
}

bool JobProgress::ended(const std::string& job_id, const std::string& path) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto job = jobs.jobs.find(job_id);
  if (job == jobs.jobs.end()) return false;
  auto file = job->second.files.find(path);
  return file != job->second.files.end() && is_end(file->second.value("status", ""));
}

std::optional<nlohmann::json> JobProgress::get(const std::string& job_id) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  if (it == jobs.jobs.end()) return std::nullopt;
  nlohmann::json doc = it->second.summary;
  doc["files"] = nlohmann::json::object();
  for (const auto& [path, f] : it->second.files) doc["files"][path] = f;
  return doc;
}

std::map<std::string, nlohmann::json> JobProgress::fold(const std::vector<nlohmann::json>& records) {
  JobProgress p;
  for (const auto& r : records) p.load(r);
  std::map<std::string, nlohmann::json> out;
  for (const Shard& jobs : p.shards_) {
    for (const auto& [id, job] : jobs.jobs) out[id] = *p.get(id);
  }
  return out;
}

}  // namespace agentline::router
