#include "recovery.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "outbox_store.h"

namespace agentline::outbox {

int run_recovery_command(int argc, char** argv) {
  CLI::App app("outbox-uploader recovery commands");
  std::string db = ".agentline/outbox-uploader.db";
  std::string job;
  bool json = false;
  app.add_option("--db", db, "The outbox database (the service's --db)")->capture_default_str();
  auto* status = app.add_subcommand("status", "Items of a job by status (all jobs without --job)");
  status->add_option("--job", job, "Job id");
  status->add_flag("--json", json, "Print JSON");
  auto* retry =
      app.add_subcommand("retry-failed", "Make a job's failed items pending again; the running service uploads them");
  retry->add_option("--job", job, "Job id")->required();
  for (auto* sub : {status, retry}) sub->add_option("--db", db, "The outbox database (the service's --db)");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  if (!std::filesystem::exists(db)) {
    std::cerr << "outbox-uploader: no outbox at " << db << " (give --db)\n";
    return 2;
  }
  OutboxStore store(db);
  if (*status) {
    const auto summary = store.summary(job);
    std::int64_t total = 0;
    for (const auto& [s, n] : summary) total += s == "waiting_for_parent" ? 0 : n;
    if (json) {
      nlohmann::json out = {{"job_id", job}, {"total", total}, {"by_status", summary}};
      nlohmann::json failed = nlohmann::json::array();
      for (const auto& item : store.items(job, "failed", 100)) {
        failed.push_back(
            {{"item_id", item.item_id}, {"path", item.path}, {"attempts", item.attempts}, {"error", item.last_error}});
      }
      out["failed"] = failed;
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::cout << "job " << (job.empty() ? "(all)" : job) << ": " << total << " item(s)\n";
    for (const auto& [s, n] : summary) std::cout << "  " << s << "\t" << n << "\n";
    for (const auto& item : store.items(job, "failed", 100)) {
      std::cout << "  failed: " << (item.path.empty() ? item.item_id : item.path) << " after " << item.attempts
                << " attempt(s): " << item.last_error << "\n";
    }
    return 0;
  }
  const auto n = store.retry_failed(job);
  std::cout << "job " << job << ": " << n << " failed item(s) pending again\n";
  return 0;
}

}  // namespace agentline::outbox
