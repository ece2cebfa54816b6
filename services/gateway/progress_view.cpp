#include "progress_view.h"

#include <algorithm>
#include <cstdio>

namespace agentline::gateway {
namespace {

std::int64_t version_of(const nlohmann::json& j) {
  const auto it = j.find("version");
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

bool is_final(const std::string& status) {
  return status == "delivered" || status == "dead_lettered" || status == "upload_failed";
}

// FNV-1a, 64 bits: an ETag only has to change when the document does.
std::string etag_of(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

void ProgressView::set_file(Job& job, const std::string& path, nlohmann::json record) {
  auto& file = job.files[path];
  const bool was_final = file.record.is_object() && is_final(file.record.value("status", ""));
  if (file.changed_at) job.changes.erase(file.changed_at);
  file.record = std::move(record);
  file.changed_at = job.sequence;
  job.changes[job.sequence] = path;
  job.done += (is_final(file.record.value("status", "")) ? 1 : 0) - (was_final ? 1 : 0);
}

void ProgressView::drop_file(Job& job, const std::string& path) {
  auto it = job.files.find(path);
  if (it == job.files.end()) return;
  if (is_final(it->second.record.value("status", ""))) --job.done;
  job.changes.erase(it->second.changed_at);
  job.files.erase(it);
}

void ProgressView::apply(const kafka::InboundRecord& record) {
  if (!record.key) return;
  const auto slash = record.key->find('/');
  const std::string job_id = record.key->substr(0, slash);
  {
    std::lock_guard lock(mutex_);
    if (record.tombstone) {
      if (slash == std::string::npos) {
        jobs_.erase(job_id);
      } else if (auto it = jobs_.find(job_id); it != jobs_.end()) {
        drop_file(it->second, record.key->substr(slash + 1));
        ++it->second.sequence;  // stays monotonic
        // A job whose summary and files are all gone is gone (the router's --job-retention).
        if (it->second.files.empty() && it->second.summary.is_null()) jobs_.erase(it);
      }
    } else {
      auto state = nlohmann::json::parse(record.value, nullptr, false);
      if (state.is_discarded() || !state.is_object()) return;
      Job& job = jobs_[job_id];
      const std::int64_t version = version_of(state);
      if (state.contains("path") && state["path"].is_string()) {
        const std::string path = state["path"].get<std::string>();
        auto known = job.files.find(path);
        const std::int64_t before = known == job.files.end() ? 0 : version_of(known->second.record);
        if (known != job.files.end() && before >= version) return;  // older or already applied
        job.sequence += std::max<std::int64_t>(1, version - before);
        set_file(job, path, std::move(state));
      } else {
        const std::int64_t before = job.summary.is_null() ? 0 : version_of(job.summary);
        if (!job.summary.is_null() && before >= version) return;
        state.erase("files");
        job.summary = std::move(state);
        job.sequence += std::max<std::int64_t>(1, version - before);
      }
      job.version = std::max(job.version, version);
    }
  }
  changed_.notify_all();
}

nlohmann::json ProgressView::summary_of(const std::string& job_id, const Job& job, bool& complete) {
  nlohmann::json doc = job.summary.is_null() ? nlohmann::json::object() : job.summary;
  // File records can arrive before the job's summary (other partitions): the document still
  // names its job (the page keyed an unnamed one as a job of its own).
  doc["job_id"] = job_id;
  doc["version"] = job.version;
  const int total = std::max(static_cast<int>(job.files.size()), doc.value("files_total", 0));
  // A goal whose plan was dead-lettered (plan_invalid) has no files and is finished too.
  const bool plan_dead =
      doc.contains("plan") && doc["plan"].is_object() && doc["plan"].value("status", "") == "dead_lettered";
  complete = (total > 0 && job.done == total) || plan_dead;
  doc["files_delivered_or_failed"] = job.done;
  doc["complete"] = complete;
  return doc;
}

JobSnapshot ProgressView::snapshot(const std::string& job_id, const Job& job, std::int64_t files_after) {
  JobSnapshot s;
  s.doc = summary_of(job_id, job, s.complete);
  auto& files = s.doc["files"] = nlohmann::json::object();
  if (files_after < 0) {
    for (const auto& [path, f] : job.files) files[path] = f.record;
  } else {
    for (auto it = job.changes.upper_bound(files_after); it != job.changes.end(); ++it)
      files[it->second] = job.files.at(it->second).record;
  }
  s.version = job.version;
  s.sequence = job.sequence;
  if (files_after < 0) s.etag = etag_of(s.doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return s;
}

std::optional<JobSnapshot> ProgressView::job(const std::string& job_id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second, -1);
}

std::vector<nlohmann::json> ProgressView::jobs() const {
  std::vector<nlohmann::json> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(jobs_.size());
    bool complete = false;
    for (const auto& [id, job] : jobs_) out.push_back(summary_of(id, job, complete));
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("updated_at", "") > b.value("updated_at", "");
  });
  return out;
}

std::optional<JobSnapshot> ProgressView::wait_for_change(const std::string& job_id, std::int64_t after_sequence,
                                                         std::chrono::milliseconds timeout,
                                                         std::int64_t files_after) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] {
    if (stopped_) return true;
    auto it = jobs_.find(job_id);
    return it != jobs_.end() && it->second.sequence > after_sequence;
  });
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second, files_after);
}

std::size_t ProgressView::size() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void ProgressView::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  changed_.notify_all();
}

}  // namespace agentline::gateway
