#include "job_progress.h"

#include <algorithm>
#include <array>
#include <map>
#include <utility>
#include <vector>

#include "agentline/events/timestamps.h"

namespace agentline::router {

using Status = JobProgress::Status;

namespace {

constexpr std::array<const char*, 12> kStatusNames{"waiting",   "submitted",         "released",  "fixing",
                                                   "generated", "generation_failed", "qa_failed", "replanning",
                                                   "qa_passed", "upload_failed",     "delivered", "dead_lettered"};

const char* name_of(Status status) { return kStatusNames[static_cast<std::size_t>(status)]; }

// A status read back; one this version does not know counts as submitted.
Status status_named(const std::string& name) {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i) {
    if (name == kStatusNames[i]) return static_cast<Status>(i);
  }
  return Status::kSubmitted;
}

bool is_end(Status status) {
  return status == Status::kQaPassed || status == Status::kDelivered || status == Status::kDeadLettered ||
         status == Status::kUploadFailed;
}

// How far a file is within one attempt (fix_attempt); with the attempt, the order a file's
// steps happen in. A step at or behind where the file is can only be a redelivered or replayed
// event: it changes nothing (a replayed FILE_COMPLETED took a delivered file back to
// "generated" for good; a replayed QA_PASSED counted twice).
int rank(Status status) {
  switch (status) {
    case Status::kWaiting:
      return 0;
    case Status::kSubmitted:
    case Status::kReleased:
    case Status::kFixing:
      return 1;
    case Status::kGenerated:
    case Status::kGenerationFailed:
      return 2;
    case Status::kQaFailed:
      return 3;
    case Status::kReplanning:
      return 4;
    case Status::kQaPassed:
      return 5;
    case Status::kUploadFailed:
      return 6;
    case Status::kDelivered:
      return 7;
    case Status::kDeadLettered:
      return 8;
  }
  return 0;
}

// The status a step moves a file to (a submission keeps the status it has).
std::optional<Status> status_of(JobProgress::Step step) {
  using Step = JobProgress::Step;
  switch (step) {
    case Step::kSubmitted:
      return std::nullopt;
    case Step::kGenerated:
      return Status::kGenerated;
    case Step::kGenerationFailed:
      return Status::kGenerationFailed;
    case Step::kQaPassed:
      return Status::kQaPassed;
    case Step::kQaFailed:
      return Status::kQaFailed;
    case Step::kFixRequested:
      return Status::kFixing;
    case Step::kDelivered:
      return Status::kDelivered;
    case Step::kUploadFailed:
      return Status::kUploadFailed;
    case Step::kDeadLettered:
      return Status::kDeadLettered;
    case Step::kPlanned:
      return Status::kWaiting;
    case Step::kReleased:
      return Status::kReleased;
    case Step::kReplanning:
      return Status::kReplanning;
  }
  return std::nullopt;
}

bool is_one_of(Status status, std::initializer_list<Status> set) {
  return std::find(set.begin(), set.end(), status) != set.end();
}

// The fields File keeps typed; a record's others are its details.
constexpr std::array<const char*, 10> kFileFields{"job_id",  "path",   "task_id", "status",  "fix_attempt",
                                                  "replans", "reason", "usage",   "version", "updated_at"};

}  // namespace

nlohmann::json JobProgress::File::to_json(const std::string& job_id, const std::string& path) const {
  nlohmann::json record = details.is_object() ? details : nlohmann::json::object();
  record["job_id"] = job_id;
  record["path"] = path;
  record["task_id"] = task_id;
  record["status"] = name_of(status);
  record["fix_attempt"] = fix_attempt;
  if (replans > 0) record["replans"] = replans;
  if (!reason.empty()) record["reason"] = reason;
  if (charged) record["usage"] = {{"tokens", tokens}, {"cost_usd", cost_usd}};
  record["version"] = version;
  if (!updated_at.empty()) record["updated_at"] = updated_at;
  return record;
}

JobProgress::File JobProgress::File::from_json(const nlohmann::json& record) {
  File f;
  f.task_id = record.value("task_id", "");
  f.status = status_named(record.value("status", ""));
  f.fix_attempt = record.value("fix_attempt", 0);
  f.replans = record.value("replans", 0);
  f.reason = record.value("reason", "");
  if (const auto usage = record.find("usage"); usage != record.end() && usage->is_object()) {
    f.charged = true;
    f.tokens = usage->value("tokens", std::int64_t{0});
    f.cost_usd = usage->value("cost_usd", 0.0);
  }
  f.version = record.value("version", std::int64_t{0});
  f.updated_at = record.value("updated_at", "");
  for (const auto& field : record.items()) {
    const std::string& key = field.key();
    if (std::find_if(kFileFields.begin(), kFileFields.end(), [&](const char* k) { return key == k; }) !=
        kFileFields.end())
      continue;
    if (!f.details.is_object()) f.details = nlohmann::json::object();
    f.details[key] = field.value();
  }
  return f;
}

void JobProgress::Tally::add(const File& file, int sign) {
  const Status status = file.status;
  const bool fixed = file.fix_attempt > 0;  // a file sent back for a fix was generated and failed QA before
  submitted += sign * (status != Status::kWaiting);
  planned += sign * file.planned();
  generated += sign * (fixed || is_one_of(status, {Status::kGenerated, Status::kQaFailed, Status::kReplanning,
                                                   Status::kQaPassed, Status::kUploadFailed, Status::kDelivered}));
  generation_failed += sign * (status == Status::kGenerationFailed);
  qa_failed += sign * (fixed || is_one_of(status, {Status::kQaFailed, Status::kFixing, Status::kReplanning}));
  qa_passed += sign * is_one_of(status, {Status::kQaPassed, Status::kUploadFailed, Status::kDelivered});
  delivered += sign * (status == Status::kDelivered);
  upload_failed += sign * (status == Status::kUploadFailed);
  dead_lettered += sign * (status == Status::kDeadLettered);
  done += sign * is_end(status);
  fixes += sign * file.fix_attempt;
  replans += sign * file.replans;
  tokens += sign * file.tokens;
  cost_usd += sign * file.cost_usd;
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

void JobProgress::set_file_locked(Job& job, const std::string& path, File file) {
  auto [slot, fresh] = job.files.try_emplace(path);
  if (!fresh) job.tally.add(slot->second, -1);
  job.tally.add(file, +1);
  slot->second = std::move(file);
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
  if (known && step == Step::kSubmitted) return {};  // a redelivered submission
  const std::optional<Status> status = status_of(step);
  if (known && !replay && step != Step::kPlanned) {
    const File& current = it->second;
    const bool same_task = current.task_id == task_id;
    // A planned file's replan gives it a new task id: events of the round before are stale.
    if (!same_task && current.planned()) return {};
    const int next_attempt = fix_attempt >= 0 ? fix_attempt : current.fix_attempt;
    // Another task for the same path (a new version of the file) counts from its own start.
    if (same_task &&
        std::pair(next_attempt, status ? rank(*status) : 0) <= std::pair(current.fix_attempt, rank(current.status)))
      return {};
  }
  // Changed in place: the file's share of the counters is taken away first and added back after.
  File& file = known ? it->second : job.files[path];
  if (known) {
    job.tally.add(file, -1);
  } else {
    file.task_id = task_id;
  }
  if (step == Step::kReplanning) ++file.replans;
  if (details.is_object()) {
    if (!file.details.is_object()) file.details = nlohmann::json::object();
    for (const auto& [k, v] : details.items()) file.details[k] = v;
  }
  file.task_id = task_id;
  if (status) file.status = *status;
  if (!reason.empty()) file.reason = reason;
  if (reason.empty() && replay && status) file.reason.clear();  // replayed: why it failed before is past
  if (fix_attempt >= 0) file.fix_attempt = fix_attempt;
  if (charge.any()) {
    file.charged = true;
    file.tokens += charge.tokens;
    file.cost_usd += charge.cost_usd;
  }
  std::string now = events::now_iso8601();
  const std::int64_t version = job.summary.value("version", std::int64_t{0}) + 1;
  job.summary["version"] = version;
  job.summary["updated_at"] = now;
  file.version = version;
  file.updated_at = std::move(now);
  job.tally.add(file, +1);
  refresh_locked(job);
  return {true, true, path};
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
  return {true, false, {}};
}

JobProgress::Update JobProgress::charge_job(const std::string& job_id, const std::string& event_id,
                                            const Charge& charge) {
  if (!charge.any()) return {};
  {
    Shard& jobs = shard(job_id);
    std::lock_guard lock(jobs.mu);
    auto it = jobs.jobs.find(job_id);
    if (it != jobs.jobs.end()) {
      const auto plan = it->second.summary.find("plan_usage");
      if (plan != it->second.summary.end() && plan->is_object() && plan->contains(event_id)) return {};
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
    if (it == job.files.end() || it->second.version <= version) set_file_locked(job, path, File::from_json(record));
  } else if (job.summary.value("version", std::int64_t{0}) <= version && record.contains("counts")) {
    job.summary = record;
    job.summary.erase("files");  // a record of the former format carried them inline
    if (record.contains("files") && record["files"].is_object()) {
      for (const auto& [path, f] : record["files"].items()) {
        nlohmann::json file = f;
        file["job_id"] = record["job_id"];
        file["path"] = path;
        file["version"] = version;
        set_file_locked(job, path, File::from_json(file));
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
  return file != job->second.files.end() && is_end(file->second.status);
}

std::optional<nlohmann::json> JobProgress::get(const std::string& job_id) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  if (it == jobs.jobs.end()) return std::nullopt;
  nlohmann::json doc = it->second.summary;
  doc["files"] = nlohmann::json::object();
  for (const auto& [path, f] : it->second.files) doc["files"][path] = f.to_json(job_id, path);
  return doc;
}

std::optional<nlohmann::json> JobProgress::summary(const std::string& job_id) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  if (it == jobs.jobs.end()) return std::nullopt;
  return it->second.summary;
}

std::optional<nlohmann::json> JobProgress::file(const std::string& job_id, const std::string& path) const {
  Shard& jobs = shard(job_id);
  std::lock_guard lock(jobs.mu);
  auto it = jobs.jobs.find(job_id);
  if (it == jobs.jobs.end()) return std::nullopt;
  auto file = it->second.files.find(path);
  if (file == it->second.files.end()) return std::nullopt;
  return file->second.to_json(job_id, path);
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
