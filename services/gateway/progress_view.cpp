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
        it->second.files.erase(record.key->substr(slash + 1));
        ++it->second.sequence;  // stays monotonic
      }
    } else {
      auto state = nlohmann::json::parse(record.value, nullptr, false);
      if (state.is_discarded() || !state.is_object()) return;
      Job& job = jobs_[job_id];
      const std::int64_t version = version_of(state);
      if (state.contains("path") && state["path"].is_string()) {
        auto& known = job.files[state["path"].get<std::string>()];
        const std::int64_t before = known.is_null() ? 0 : version_of(known);
        if (!known.is_null() && before >= version) return;  // older or already applied
        known = std::move(state);
        job.sequence += version - before;
      } else {
        const std::int64_t before = job.summary.is_null() ? 0 : version_of(job.summary);
        if (!job.summary.is_null() && before >= version) return;
        state.erase("files");
        job.summary = std::move(state);
        job.sequence += version - before;
      }
      job.version = std::max(job.version, version);
    }
  }
  changed_.notify_all();
}

JobSnapshot ProgressView::snapshot(const std::string& job_id, const Job& job) {
  JobSnapshot s;
  s.doc = job.summary.is_null() ? nlohmann::json::object() : job.summary;
  // File records can arrive before the job's summary (other partitions): the document still
  // names its job (the page keyed an unnamed one as a job of its own).
  s.doc["job_id"] = job_id;
  s.doc["files"] = nlohmann::json::object();
  int done = 0;
  for (const auto& [path, f] : job.files) {
    s.doc["files"][path] = f;
    if (is_final(f.value("status", ""))) ++done;
  }
  s.doc["version"] = job.version;
  const int total = std::max(static_cast<int>(job.files.size()), s.doc.value("files_total", 0));
  // A goal whose plan was dead-lettered (plan_invalid) has no files and is finished too.
  const bool plan_dead =
      s.doc.contains("plan") && s.doc["plan"].is_object() && s.doc["plan"].value("status", "") == "dead_lettered";
  s.complete = (total > 0 && done == total) || plan_dead;
  s.doc["files_delivered_or_failed"] = done;
  s.doc["complete"] = s.complete;
  s.version = job.version;
  s.sequence = job.sequence;
  s.etag = etag_of(s.doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return s;
}

std::optional<JobSnapshot> ProgressView::job(const std::string& job_id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second);
}

std::vector<nlohmann::json> ProgressView::jobs() const {
  std::vector<nlohmann::json> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, job] : jobs_) {
      auto s = snapshot(id, job).doc;
      s.erase("files");
      out.push_back(std::move(s));
    }
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("updated_at", "") > b.value("updated_at", "");
  });
  return out;
}

std::optional<JobSnapshot> ProgressView::wait_for_change(const std::string& job_id, std::int64_t after_sequence,
                                                         std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] {
    if (stopped_) return true;
    auto it = jobs_.find(job_id);
    return it != jobs_.end() && it->second.sequence > after_sequence;
  });
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->first, it->second);
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
