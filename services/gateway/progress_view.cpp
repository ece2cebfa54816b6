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

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// FNV-1a, 64 bits: an ETag only has to change when the job does.
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

bool JobSnapshot::write(const std::function<bool(std::string_view)>& sink, std::size_t chunk) const {
  std::string buf = dump(summary);  // "{...}", reopened to add the files
  buf.pop_back();
  if (buf.size() > 1) buf += ',';
  buf += "\"files\":{";
  bool first = true;
  for (const auto& member : files) {
    if (!first) buf += ',';
    first = false;
    buf += *member;
    if (buf.size() >= chunk) {
      if (!sink(buf)) return false;
      buf.clear();
    }
  }
  buf += "}}";
  return sink(buf);
}

std::string JobSnapshot::text() const {
  std::string out;
  write([&](std::string_view piece) {
    out.append(piece);
    return true;
  });
  return out;
}

void ProgressView::set_file(Job& job, const std::string& path, const nlohmann::json& record, std::int64_t version) {
  auto& file = job.files[path];
  const bool was_final = file.final;
  if (file.changed_at) job.changes.erase(file.changed_at);
  file.member = std::make_shared<const std::string>(dump(path) + ":" + dump(record));
  file.version = version;
  file.final = is_final(record.value("status", ""));
  file.changed_at = job.sequence;
  job.changes[job.sequence] = path;
  job.done += (file.final ? 1 : 0) - (was_final ? 1 : 0);
}

void ProgressView::drop_file(Job& job, const std::string& path) {
  auto it = job.files.find(path);
  if (it == job.files.end()) return;
  if (it->second.final) --job.done;
  job.changes.erase(it->second.changed_at);
  job.files.erase(it);
}

void ProgressView::apply(const kafka::InboundRecord& record) {
  if (!record.key) return;
  const auto slash = record.key->find('/');
  const std::string job_id = record.key->substr(0, slash);
  if (record.tombstone) {
    {
      std::lock_guard lock(mutex_);
      if (slash == std::string::npos) {
        jobs_.erase(job_id);
      } else if (auto it = jobs_.find(job_id); it != jobs_.end()) {
        drop_file(it->second, record.key->substr(slash + 1));
        ++it->second.sequence;  // stays monotonic
        // A job whose summary and files are all gone is gone (the router's --job-retention).
        if (it->second.files.empty() && it->second.summary.is_null()) jobs_.erase(it);
      }
    }
    changed_.notify_all();
    return;
  }
  // Parsed outside the lock: readers wait only for the change itself.
  auto state = nlohmann::json::parse(record.value, nullptr, false);
  if (state.is_discarded() || !state.is_object()) return;
  const std::int64_t version = version_of(state);
  const bool is_file = state.contains("path") && state["path"].is_string();
  if (!is_file) state.erase("files");
  {
    std::lock_guard lock(mutex_);
    Job& job = jobs_[job_id];
    if (is_file) {
      const std::string path = state["path"].get<std::string>();
      auto known = job.files.find(path);
      const std::int64_t before = known == job.files.end() ? 0 : known->second.version;
      if (known != job.files.end() && before >= version) return;  // older or already applied
      job.sequence += std::max<std::int64_t>(1, version - before);
      set_file(job, path, state, version);
    } else {
      const std::int64_t before = job.summary.is_null() ? 0 : version_of(job.summary);
      if (!job.summary.is_null() && before >= version) return;
      job.summary = std::move(state);
      job.sequence += std::max<std::int64_t>(1, version - before);
    }
    job.version = std::max(job.version, version);
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

JobSnapshot ProgressView::snapshot(const std::string& job_id, const Job& job, std::int64_t files_after,
                                   bool with_etag) {
  JobSnapshot s;
  s.summary = summary_of(job_id, job, s.complete);
  if (files_after < 0) {
    s.files.reserve(job.files.size());
    for (const auto& [path, f] : job.files) s.files.push_back(f.member);
  } else {
    for (auto it = job.changes.upper_bound(files_after); it != job.changes.end(); ++it)
      s.files.push_back(job.files.at(it->second).member);
  }
  s.version = job.version;
  s.sequence = job.sequence;
  // The sequence moves with every change of the job; the summary keeps two replicas that read
  // different records from sharing a tag by chance. Event streams never send it: not computed
  // for them (64 streams, a few events a second each).
  if (with_etag) s.etag = etag_of(std::to_string(job.sequence) + ":" + dump(s.summary));
  return s;
}

std::optional<JobSnapshot> ProgressView::job(const std::string& job_id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second, -1, true);
}

std::optional<JobSnapshot> ProgressView::summary(const std::string& job_id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second, it->second.sequence, true);
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
  return snapshot(it->first, it->second, files_after, false);
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
