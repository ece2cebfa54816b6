#include "dependency_gate.h"

#include <functional>
#include <set>

#include "agentline/events/ids.h"
#include "agentline/events/timestamps.h"

namespace agentline::router {
namespace {

using nlohmann::json;

constexpr std::size_t kTaskContextBytes = 512 * 1024;  // all context files of one task together

// <job_id>:<n> (shortened with a hash where that would not fit a task id).
std::string task_id_for(const std::string& job_id, std::size_t n) {
  return events::derived_id("", job_id, ":" + std::to_string(n));
}

const json& files_of(const json& plan_record) {
  static const json kNone = json::array();
  if (!plan_record.is_object() || !plan_record.contains("plan")) return kNone;
  const auto& files = plan_record["plan"].value("files", kNone);
  return files.is_array() ? plan_record["plan"]["files"] : kNone;
}

// The files of the plan that depend on `path` directly.
std::vector<std::string> dependants_of(const json& plan_record, const std::string& path) {
  std::vector<std::string> out;
  for (const auto& f : files_of(plan_record)) {
    for (const auto& d : f.value("depends_on", json::array())) {
      if (d == path) {
        out.push_back(f.value("path", ""));
        break;
      }
    }
  }
  return out;
}

// The plan's entry for `path`, null if the plan has none.
const json* file_of(const json& plan_record, const std::string& path) {
  for (const auto& f : files_of(plan_record)) {
    if (f.value("path", "") == path) return &f;
  }
  return nullptr;
}

}  // namespace

json DependencyGate::file_record(const std::string& job_id, const std::string& path, const char* state) {
  return {{"job_id", job_id}, {"path", path}, {"state", state}, {"updated_at", events::now_iso8601()}};
}

DependencyGate::Output DependencyGate::accept_plan(const std::string& job_id, const json& payload) {
  std::lock_guard lock(mu_);
  Job& job = jobs_[job_id];
  Output out;
  if (!job.plan.is_null()) return out;
  json plan = payload.value("plan", json::object());
  std::size_t n = 0;
  for (auto& f : plan["files"]) f["task_id"] = task_id_for(job_id, n++);
  json record = {{"job_id", job_id}, {"goal", payload.value("goal", "")}, {"plan", std::move(plan)}};
  for (const char* carried : {"tenant", "constraints"}) {
    if (payload.contains(carried)) record[carried] = payload[carried];
  }
  job.plan = record;
  out.records.emplace_back(job_id, std::move(record));
  release_ready(job_id, job, out);
  return out;
}

DependencyGate::Output DependencyGate::accept_replan(const std::string& job_id, const std::string& task_id,
                                                     const json& payload) {
  std::lock_guard lock(mu_);
  Output out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return out;
  Job& job = it->second;
  const std::string path = payload.value("replan_of", "");
  json& files = job.plan["plan"]["files"];
  json* current = nullptr;
  std::set<std::string> known;
  for (auto& f : files) {
    known.insert(f.value("path", ""));
    if (f.value("path", "") == path) current = &f;
  }
  // A replan applies once, to the file as it was when it was asked for (a redelivered or
  // replayed PLAN_COMPLETED finds the file's task id moved on).
  if (!current || current->value("task_id", "") != task_id) return out;
  const int round = current->value("replans", 0) + 1;
  std::size_t next = files.size();
  for (const auto& f : payload["plan"].value("files", json::array())) {
    const std::string p = f.value("path", "");
    if (p == path) {
      json revised = f;
      revised["task_id"] = events::derived_id("", task_id, "r" + std::to_string(round));
      revised["replans"] = round;
      revised["replanned"] = true;
      if (current->contains("parent")) revised["parent"] = (*current)["parent"];
      *current = std::move(revised);
    }
  }
  for (const auto& f : payload["plan"].value("files", json::array())) {
    const std::string p = f.value("path", "");
    if (p == path || known.count(p)) continue;
    json added = f;
    added["task_id"] = task_id_for(job_id, next++);
    files.push_back(std::move(added));
  }
  // The file waits again, for its (possibly new) dependencies.
  pending_.erase(job_id + "/" + path);
  json waiting = file_record(job_id, path, "waiting");
  job.files[path] = waiting;
  out.records.emplace_back(job_id, job.plan);
  out.records.emplace_back(job_id + "/" + path, std::move(waiting));
  release_ready(job_id, job, out);
  return out;
}

DependencyGate::Output DependencyGate::passed(const std::string& job_id, const std::string& path,
                                              const std::string& content, json delivery) {
  json record = file_record(job_id, path, "passed");
  record["content"] = content.substr(0, kHoldBytes);
  if (content.size() > kHoldBytes) record["content_cut"] = true;
  if (delivery.is_object()) record["delivery"] = std::move(delivery);
  return settle(job_id, path, std::move(record));
}

DependencyGate::Output DependencyGate::failed(const std::string& job_id, const std::string& path,
                                              const std::string& reason) {
  json record = file_record(job_id, path, "failed");
  record["reason"] = reason.substr(0, 1000);
  return settle(job_id, path, std::move(record));
}

DependencyGate::Output DependencyGate::settle(const std::string& job_id, const std::string& path, json record) {
  std::lock_guard lock(mu_);
  Output out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return out;
  it->second.files[path] = record;
  out.records.emplace_back(job_id + "/" + path, std::move(record));
  release_ready(job_id, it->second, out);
  return out;
}

void DependencyGate::release_ready(const std::string& job_id, Job& job, Output& out) {
  const json& files = files_of(job.plan);
  auto state = [&](const std::string& path) {
    auto f = job.files.find(path);
    return f == job.files.end() ? std::string("waiting") : f->second.value("state", "waiting");
  };
  // Files that wait on each one, directly or not: the critical path's weight.
  std::map<std::string, std::vector<std::string>> waiting_on;  // dependency -> direct dependants
  for (const auto& f : files) {
    for (const auto& d : f.value("depends_on", json::array())) waiting_on[d.get<std::string>()].push_back(f["path"]);
  }
  auto dependants = [&](const std::string& path) {
    std::set<std::string> seen;
    std::vector<std::string> stack{path};
    while (!stack.empty()) {
      const std::string p = stack.back();
      stack.pop_back();
      for (const auto& d : waiting_on[p]) {
        if (seen.insert(d).second) stack.push_back(d);
      }
    }
    return static_cast<int>(seen.size());
  };
  for (const auto& f : files) {
    const std::string path = f.value("path", "");
    if (state(path) != "waiting" || pending_.count(job_id + "/" + path)) continue;
    bool ready = true;
    for (const auto& d : f.value("depends_on", json::array())) {
      const std::string s = state(d.get<std::string>());
      if (s != "passed" && s != "failed") ready = false;
    }
    if (!ready) continue;
    const std::string task_id = f.value("task_id", "");
    json payload = {{"path", path},
                    {"description", f.value("description", "")},
                    {"language", f.value("language", "text")},
                    {"dependants", dependants(path)}};
    if (f.contains("parent")) payload["parent_id"] = f["parent"];
    if (job.plan.contains("tenant")) payload["tenant"] = job.plan["tenant"];
    json context = context_locked(job, path, false);
    for (auto& [k, v] : context.items()) payload[k] = std::move(v);
    out.tasks.push_back({{"id", events::derived_id("rel-", task_id)},
                         {"task_id", task_id},
                         {"job_id", job_id},
                         {"type", "DEV_TASK"},
                         {"created_at", events::now_iso8601()},
                         {"payload", std::move(payload)}});
    pending_.insert(job_id + "/" + path);
  }
}

DependencyGate::Output DependencyGate::confirm(const std::string& job_id, const std::string& path,
                                               const std::string& task_id) {
  std::lock_guard lock(mu_);
  Output out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return out;
  Job& job = it->second;
  const json* planned = file_of(job.plan, path);
  const bool current = planned && planned->value("task_id", "") == task_id;
  auto state = job.files.find(path);
  if (!current || (state != job.files.end() && state->second.value("state", "waiting") != "waiting")) return out;
  json record = file_record(job_id, path, "released");
  record["task_id"] = task_id;
  job.files[path] = record;
  pending_.erase(job_id + "/" + path);
  out.records.emplace_back(job_id + "/" + path, std::move(record));
  return out;
}

json DependencyGate::context_locked(const Job& job, const std::string& path, bool fix) const {
  const json& files = files_of(job.plan);
  json summary = json::array();
  const json* self = nullptr;
  for (const auto& f : files) {
    summary.push_back({{"path", f.value("path", "")},
                       {"description", f.value("description", "").substr(0, 300)},
                       {"depends_on", f.value("depends_on", json::array())}});
    if (f.value("path", "") == path) self = &f;
  }
  json out = {{"job",
               {{"goal", job.plan.value("goal", "")},
                {"interface", job.plan.contains("plan") ? job.plan["plan"].value("interface", "") : ""},
                {"files", std::move(summary)}}}};
  json context = json::array();
  json failures = json::array();
  std::size_t budget = kTaskContextBytes;
  auto add = [&](const std::string& p, const json& record, const char* relation) {
    const std::string content = record.value("content", "").substr(0, kContextBytes);
    if (content.size() > budget) return;
    budget -= content.size();
    context.push_back({{"path", p}, {"content", content}, {"relation", relation}});
  };
  if (self) {
    for (const auto& d : self->value("depends_on", json::array())) {
      auto it = job.files.find(d.get<std::string>());
      if (it == job.files.end()) continue;
      if (it->second.value("state", "") == "passed") add(d, it->second, "dependency");
      if (it->second.value("state", "") == "failed")
        failures.push_back({{"path", d}, {"reason", it->second.value("reason", "")}});
    }
  }
  if (fix) {
    for (const auto& p : dependants_of(job.plan, path)) {
      auto it = job.files.find(p);
      if (it != job.files.end() && it->second.value("state", "") == "passed") add(p, it->second, "dependant");
    }
  }
  if (!context.empty()) out["context_files"] = std::move(context);
  if (!failures.empty()) out["dependency_failures"] = std::move(failures);
  return out;
}

bool DependencyGate::has_plan(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && !it->second.plan.is_null();
}

bool DependencyGate::planned(const std::string& job_id, const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && file_of(it->second.plan, path) != nullptr;
}

std::vector<std::string> DependencyGate::dependants(const std::string& job_id, const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? std::vector<std::string>() : dependants_of(it->second.plan, path);
}

int DependencyGate::replans(const std::string& job_id, const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  const json* f = it == jobs_.end() ? nullptr : file_of(it->second.plan, path);
  return f ? f->value("replans", 0) : 0;
}

std::optional<json> DependencyGate::plan(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return std::nullopt;
  return it->second.plan;
}

json DependencyGate::context_for(const std::string& job_id, const std::string& path, bool fix) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return json::object();
  return context_locked(it->second, path, fix);
}

json DependencyGate::job_check(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || !it->second.plan.is_object()) return nullptr;
  return it->second.plan.value("job_check", json());
}

std::vector<std::string> DependencyGate::jobs_with_job_check(const std::string& state) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [job_id, job] : jobs_) {
    if (job.plan.is_object() && job.plan.contains("job_check") && job.plan["job_check"].is_object() &&
        job.plan["job_check"].value("state", "") == state)
      out.push_back(job_id);
  }
  return out;
}

DependencyGate::Output DependencyGate::set_job_check(const std::string& job_id, json state) {
  std::lock_guard lock(mu_);
  Output out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return out;
  it->second.plan["job_check"] = std::move(state);
  out.records.emplace_back(job_id, it->second.plan);
  return out;
}

std::optional<std::vector<json>> DependencyGate::ended_files(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return std::nullopt;
  const Job& job = it->second;
  auto state = [&](const json& f) {
    auto s = job.files.find(f.value("path", ""));
    return s == job.files.end() ? std::string("waiting") : s->second.value("state", "waiting");
  };
  // Checked first, copied after: this runs on every step of the job.
  for (const auto& f : files_of(job.plan)) {
    const std::string s = state(f);
    if (s != "passed" && s != "failed") return std::nullopt;
  }
  std::vector<json> passed;
  for (const auto& f : files_of(job.plan)) {
    if (state(f) != "passed") continue;
    json record = job.files.at(f.value("path", ""));
    record["task_id"] = f.value("task_id", "");
    passed.push_back(std::move(record));
  }
  return passed;
}

DependencyGate::Output DependencyGate::reopen(const std::string& job_id, const std::string& path,
                                              const std::string& task_id) {
  std::lock_guard lock(mu_);
  Output out;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.plan.is_null()) return out;
  json record = file_record(job_id, path, "released");
  record["task_id"] = task_id;
  it->second.files[path] = record;
  out.records.emplace_back(job_id + "/" + path, std::move(record));
  return out;
}

void DependencyGate::load(const std::string& key, const json& value) {
  if (!value.is_object() || !value.contains("job_id") || !value["job_id"].is_string()) return;
  const std::string job_id = value["job_id"];
  std::lock_guard lock(mu_);
  Job& job = jobs_[job_id];
  if (key == job_id) {
    if (value.contains("plan") && value["plan"].is_object()) job.plan = value;
  } else if (value.contains("path") && value["path"].is_string()) {
    job.files[value["path"].get<std::string>()] = value;
  }
}

std::vector<std::string> DependencyGate::forget(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return keys;
  for (const auto& [path, record] : it->second.files) keys.push_back(job_id + "/" + path);
  keys.push_back(job_id);
  jobs_.erase(it);
  return keys;
}

void DependencyGate::drop(const std::string& key) {
  std::lock_guard lock(mu_);
  const auto slash = key.find('/');
  auto it = jobs_.find(key.substr(0, slash));
  if (it == jobs_.end()) return;
  if (slash == std::string::npos) {
    jobs_.erase(it);
  } else {
    it->second.files.erase(key.substr(slash + 1));
  }
}

}  // namespace agentline::router
