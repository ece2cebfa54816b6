#pragma once
// Per-job progress, folded from the task and event stream: each file's status, and the job's
// counters and percentage derived from those statuses (docs/progress.md), so a redelivered or
// reordered event can neither move a file back nor count twice. The counters are numbers of
// files: submitted, planned, generated (at least once), generation_failed, qa_failed (at least
// once), qa_passed (passed, or passed and then delivered or failed delivery), delivered,
// upload_failed, dead_lettered; fixes and replans are the files' fix attempt and replan numbers,
// summed. files_done counts files at an end (QA passed, delivered, failed delivery or
// dead-lettered). Thread-safe.
//
// Spending (docs/llm-economics.md): each file's "usage" {tokens, cost_usd} sums the calls that
// made its steps; the summary's "usage" sums the files' and the plan's. A job with a "budget"
// {tokens, cost_usd} (set by its first task that carries one, replaced by JOB_BUDGET_SET) has
// "exhausted": true in it once the usage reaches either limit — dev-fix-worker then
// dead-letters the job's remaining work as budget_exhausted.
//
// On the compacted jobs.progress topic a job is two kinds of record, so each step costs the
// same whatever the job's size:
//  - the job summary, key `<job_id>`: job_id, counts, files_total, files_done, percent,
//    updated_at, version, and "plan" for a job submitted as a goal;
//  - one record per file, key `<job_id>/<path>`: job_id, path, task_id, status, fix_attempt,
//    reason (when there is one), version (the job's version at that step), updated_at.
// Job ids never contain '/', so the key tells the kinds apart; so does the "path" field.
// fold() turns the records back into one JSON document per job (summary + "files").
//
// A file's state is a typed struct (File), not a JSON document; a step says which records it
// changed (Update) and the records are made from the state when they are published (summary(),
// file()), so a step whose record a later one replaces is never serialized (#23).
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentline/events/message_validator.h"

namespace agentline::router {

// What an LLM call cost (docs/llm-economics.md): its prompt and completion tokens, and its
// price from the backend's price table.
struct UsageCharge {
  std::int64_t tokens = 0;
  double cost_usd = 0;
  bool any() const { return tokens > 0 || cost_usd > 0; }
  // From an event's payload (prompt_tokens, completion_tokens, cost_usd; absent: 0).
  static UsageCharge of(const nlohmann::json& usage);
  // The same fields, read with the event's envelope.
  static UsageCharge of(const events::EventEnvelope::Usage& usage);
};

class JobProgress {
 public:
  enum class Step {
    kSubmitted,
    kGenerated,
    kGenerationFailed,
    kQaPassed,
    kQaFailed,
    kFixRequested,
    kDelivered,
    kUploadFailed,
    kDeadLettered,
    kPlanned,     // a file of an accepted plan, waiting for its dependencies ("waiting")
    kReleased,    // its dependencies are done: its task is out ("released")
    kReplanning,  // it reached the fix limit and went back to the planner ("replanning")
  };

  // Where a file is (docs/progress.md's statuses, in the order of the steps).
  enum class Status : std::uint8_t {
    kWaiting,
    kSubmitted,
    kReleased,
    kFixing,
    kGenerated,
    kGenerationFailed,
    kQaFailed,
    kReplanning,
    kQaPassed,
    kUploadFailed,
    kDelivered,
    kDeadLettered,
  };

  // What a step changed: the job's summary (key: job_id) and, when `file`, the record of the
  // file at `path` (key: job_id + "/" + path). Nothing when the step changed nothing.
  struct Update {
    bool summary = false;
    bool file = false;
    std::string path;
  };

  using Charge = UsageCharge;

  // Records one step of one file and returns the records to publish (both null when the step
  // changes nothing). Call under lock() when the publication order matters. A file's status
  // only moves forward: a step at or behind where the file is — by fix attempt, then by the
  // order of the steps (released, generated, qa_failed, replanning, qa_passed, upload_failed,
  // delivered, dead_lettered) — is a redelivered or replayed event and is ignored, counts
  // included, unless `replay` (a deliberate replay from the DLQ). Another task for the same
  // path (a new version of a hand-submitted file) takes the file over from its own start; for a
  // planned file, events of an earlier task id (before a replan) are ignored.
  // `details` (an object) is merged into the file's record: a planned file's description and
  // depends_on, so the job page shows the plan. `charge`, the call that made this step, is added
  // to the file's "usage" {tokens, cost_usd} when the step applies (so a redelivered event is
  // not charged twice) and to the job's.
  Update apply(const std::string& job_id, const std::string& task_id, const std::string& path, Step step,
               const std::string& reason = "", int fix_attempt = -1, const nlohmann::json& details = nullptr,
               bool replay = false, const Charge& charge = {});
  // Charges a call not made for one file (a plan or replan) to the job, under the event's id:
  // charging the same event again changes nothing. Kept in the summary's "plan_usage".
  Update charge_job(const std::string& job_id, const std::string& event_id, const Charge& charge);
  // The job's tenant, from its first task, in the summary's "tenant" (dev-fix-worker charges the
  // tenant's budgets with the job's usage); published with the job's next update.
  void set_tenant(const std::string& job_id, const std::string& tenant);
  // Whether the summary has `section` (e.g. "budget").
  bool has_section(const std::string& job_id, const std::string& section) const;
  // Sets the summary's "plan": {status: planning | fixing | accepted | dead_lettered, goal,
  // attempt, interface, files, reason}: a job submitted as a goal shows its plan before it has
  // files. Merged into what is there.
  Update set_plan(const std::string& job_id, const nlohmann::json& plan) { return set_section(job_id, "plan", plan); }
  // The same for any section of the summary: "job_check" {state: running | fixing | passed |
  // failed | skipped, attempt, checks, diagnostics, reason} (docs/qa.md). `replace`: the section
  // becomes `value` instead of taking its keys.
  Update set_section(const std::string& job_id, const std::string& section, const nlohmann::json& value,
                     bool replace = false);
  // Loads a record read back from jobs.progress (at start): a summary or a file record.
  void load(const nlohmann::json& record);
  // Retention: jobs that finished (every file delivered, failed delivery or dead-lettered, or
  // the plan dead-lettered) and have not changed since `older_than` (ISO 8601 UTC, the format
  // of updated_at) are forgotten. Returns their ids with their jobs.progress keys (files
  // first, the summary last), to tombstone.
  std::vector<std::pair<std::string, std::vector<std::string>>> expire(const std::string& older_than);
  // Forgets one key read back as a tombstone (another replica's retention).
  void drop(const std::string& key);
  // True when the file is at an end (QA passed, delivered, failed delivery, dead-lettered).
  bool ended(const std::string& job_id, const std::string& path) const;
  // The job as one document: the summary with "files" {path: file record}.
  std::optional<nlohmann::json> get(const std::string& job_id) const;
  // The records as published on jobs.progress, from the state now: the job's summary, and one
  // file's record (nullopt when the job or the file is not known, e.g. forgotten by retention).
  std::optional<nlohmann::json> summary(const std::string& job_id) const;
  std::optional<nlohmann::json> file(const std::string& job_id, const std::string& path) const;
  // Orders apply + publish per job (the compacted topic must end on the latest version). Jobs
  // share one of kStripes locks by hash, so workers on different jobs do not wait for each other.
  std::unique_lock<std::mutex> lock(const std::string& job_id) const {
    return std::unique_lock(publish_mu_[std::hash<std::string>{}(job_id) % kStripes]);
  }

  // Folds jobs.progress records (in topic order) into one document per job.
  static std::map<std::string, nlohmann::json> fold(const std::vector<nlohmann::json>& records);

 private:
  // The job's counters, kept from its files' states as they change (each file adds what its
  // state implies, and takes it away when its state moves on).
  struct File {
    std::string task_id;
    Status status = Status::kSubmitted;
    int fix_attempt = 0;
    int replans = 0;
    std::string reason;
    bool charged = false;  // shows "usage" {tokens, cost_usd}: a call was charged to it
    std::int64_t tokens = 0;
    double cost_usd = 0;
    std::int64_t version = 0;
    std::string updated_at;
    // A planned file's description and depends_on, and any field this version does not know
    // (kept as read back); null when there is none.
    nlohmann::json details;
    bool planned() const { return details.is_object() && details.contains("depends_on"); }
    nlohmann::json to_json(const std::string& job_id, const std::string& path) const;
    static File from_json(const nlohmann::json& record);
  };
  struct Tally {
    int submitted = 0, planned = 0, generated = 0, generation_failed = 0, qa_failed = 0, qa_passed = 0, delivered = 0,
        upload_failed = 0, dead_lettered = 0, done = 0, fixes = 0, replans = 0;
    std::int64_t tokens = 0;
    double cost_usd = 0;
    void add(const File& file, int sign);
    // Writes the counters into the summary's "counts" object, in place.
    void write(nlohmann::json& counts) const;
  };
  struct Job {
    nlohmann::json summary;
    std::unordered_map<std::string, File> files;
    Tally tally;
  };
  // Jobs by the same hash as the publication locks, each shard under its own mutex: workers on
  // different jobs do not wait for each other here either.
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Job> jobs;
  };
  Shard& shard(const std::string& job_id) const { return shards_[std::hash<std::string>{}(job_id) % kStripes]; }
  static Job& job_locked(Shard& shard, const std::string& job_id);
  static void expire_locked(Shard& jobs, const std::string& older_than,
                            std::vector<std::pair<std::string, std::vector<std::string>>>& out);
  static void set_file_locked(Job& job, const std::string& path, File file);
  static void refresh_locked(Job& job);

  static constexpr std::size_t kStripes = 64;
  mutable std::array<std::mutex, kStripes> publish_mu_;
  mutable std::array<Shard, kStripes> shards_;
};

}  // namespace agentline::router
