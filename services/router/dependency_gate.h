#pragma once
// The release of a planned job's files in dependency order (docs/planning.md). A file waits
// until every file it depends on has passed QA (or was given up, which its task then says),
// and is released once: as a DEV_TASK carrying its job's context — the goal, the interface
// notes, the plan's file list, the content of its dependencies — and the number of files that
// wait on it (priority-assigner's critical path).
//
// State is records on the compacted jobs.plans topic, so it survives crashes and moves with a
// job's partition to another replica:
//   key <job_id>         the accepted plan: job_id, goal, plan {files, interface, items},
//                        tenant, constraints
//   key <job_id>/<path>  a file's state: waiting | released | passed (with its content, up to
//                        kHoldBytes, and what its delivery needs) | failed (with the reason)
// The plan record also holds the job check's state (docs/qa.md): "job_check" {attempt, state:
// running | fixing | passed | failed | skipped}.
// A file with no record waits. A file is "released" only once its task was read back from
// tasks.submitted (confirm): a record written beside the task in one batch could reach Kafka
// while the task did not (a SIGKILL between the two acknowledgements), and the file would wait
// for good. Until then a released task is pending in memory; after a restart, the replayed event
// that made it ready releases it again (same ids: downstream absorbs the copy).
// The methods return what to publish; callers hold the job's lock (JobProgress::lock) from the
// call until the outputs are emitted, so decisions of one job never interleave. Thread-safe.
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace agentline::router {

class DependencyGate {
 public:
  static constexpr std::size_t kContextBytes = 64 * 1024;  // of one file's content in a prompt
  static constexpr std::size_t kHoldBytes = 256 * 1024;    // of one file's content kept (job check, delivery)

  struct Output {
    std::vector<std::pair<std::string, nlohmann::json>> records;  // jobs.plans: key, value
    std::vector<nlohmann::json> tasks;                            // DEV_TASKs for tasks.submitted
  };

  // An accepted plan (PLAN_COMPLETED's payload) for a job that has none: records it and
  // releases the files that depend on nothing. Task ids are <job_id>:<n>, by the plan's order.
  // A second plan for the same job is ignored (empty output): one job, one plan.
  Output accept_plan(const std::string& job_id, const nlohmann::json& payload);
  // A replan (PLAN_COMPLETED with replan_of, for the file whose task id was `task_id`): the file
  // is revised (its task id gets a round suffix, so its events are new ones), new files are
  // added, and what is ready is released. Applies once: a replayed replan finds the file's task
  // id moved on and is ignored.
  Output accept_replan(const std::string& job_id, const std::string& task_id, const nlohmann::json& payload);
  // A planned file passed QA: its content is kept for its dependants, which are released
  // once all their dependencies are done, and for the job check; `delivery` is the QA_PASSED
  // event without its content (id, task_id, payload), to deliver the file once the job passes.
  Output passed(const std::string& job_id, const std::string& path, const std::string& content,
                nlohmann::json delivery = nullptr);
  // A planned file was given up (dead-lettered): its dependants are released with that fact.
  Output failed(const std::string& job_id, const std::string& path, const std::string& reason);

  // A released task read back from tasks.submitted: the file is released for good (a record).
  // Nothing for a task that is not the file's current one.
  Output confirm(const std::string& job_id, const std::string& path, const std::string& task_id);

  bool has_plan(const std::string& job_id) const;
  bool planned(const std::string& job_id, const std::string& path) const;
  // The planned files that depend on `path` directly, in the plan's order.
  std::vector<std::string> dependants(const std::string& job_id, const std::string& path) const;
  // How often the file was planned again (0 for none).
  int replans(const std::string& job_id, const std::string& path) const;
  // The job's accepted plan record (as stored under <job_id>), if any.
  std::optional<nlohmann::json> plan(const std::string& job_id) const;
  // What a task for `path` carries of its job: {"job": {...}, "context_files": [...],
  // "dependency_failures": [...]}; for a fix also the content of passed files that depend on
  // it (relation "dependant").
  nlohmann::json context_for(const std::string& job_id, const std::string& path, bool fix) const;

  // ---- job checks (the router decides; the gate keeps the state) ----
  // The plan record's "job_check", null when there is none yet.
  nlohmann::json job_check(const std::string& job_id) const;
  // The jobs whose job check is in `state`.
  std::vector<std::string> jobs_with_job_check(const std::string& state) const;
  // Records the job check's state in the plan record (the record to publish).
  Output set_job_check(const std::string& job_id, nlohmann::json state);
  // When every planned file has ended (passed or failed): the passed files' records (path,
  // content, task_id, delivery, content_cut); nullopt while any file is still on its way.
  std::optional<std::vector<nlohmann::json>> ended_files(const std::string& job_id) const;
  // A passed file goes back for a fix the job check asked for: "released" again, under its task.
  Output reopen(const std::string& job_id, const std::string& path, const std::string& task_id);

  // A jobs.plans record read back (at start, or from another replica).
  void load(const std::string& key, const nlohmann::json& value);
  // The job's retention ended: its jobs.plans keys (files first, the plan last), to tombstone;
  // the job is forgotten. drop() forgets one key read back as a tombstone.
  std::vector<std::string> forget(const std::string& job_id);
  void drop(const std::string& key);

 private:
  struct Job {
    nlohmann::json plan;                                    // the <job_id> record, null until known
    std::unordered_map<std::string, nlohmann::json> files;  // path -> the <job_id>/<path> record
  };
  // Records a planned file's end (passed or failed) and releases what it made ready.
  Output settle(const std::string& job_id, const std::string& path, nlohmann::json record);
  // Releases every waiting file whose dependencies are all done. Caller holds mu_.
  void release_ready(const std::string& job_id, Job& job, Output& out);
  nlohmann::json context_locked(const Job& job, const std::string& path, bool fix) const;
  static nlohmann::json file_record(const std::string& job_id, const std::string& path, const char* state);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Job> jobs_;
  std::set<std::string> pending_;  // <job_id>/<path>: task emitted, not read back yet
};

}  // namespace agentline::router
