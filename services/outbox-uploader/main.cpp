// outbox-uploader: deploy.requests -> SQLite outbox -> target (filesystem | webhook | Azure DevOps),
// with UPLOADED / UPLOAD_FAILED events. Also the recovery commands:
//   outbox-uploader status --job J [--db PATH] [--json]
//   outbox-uploader retry-failed --job J [--db PATH]
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agentline/config/options.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "agentline/service/service_host.h"
#include "agentline/storage/volume_watch.h"
#include "outbox_store.h"
#include "uploader.h"

namespace {

int recovery_command(int argc, char** argv) {
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
  agentline::outbox::OutboxStore store(db);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "status" || std::string(argv[1]) == "retry-failed")) {
    try {
      return recovery_command(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "outbox-uploader: " << e.what() << "\n";
      return 1;
    }
  }
  agentline::service::ServiceHost host("outbox-uploader",
                                       "Stages deploy.requests in a SQLite outbox and uploads each item exactly once "
                                       "(filesystem, webhook or Azure DevOps).\n"
                                       "Recovery: outbox-uploader status --job J | retry-failed --job J (with --db).",
                                       {"deploy.requests"});
  std::string db;
  agentline::outbox::TargetConfig target_config;
  agentline::outbox::UploaderConfig config;
  std::string webhook_token_file, ado_pat_file;
  int timeout_ms = 10000, max_attempts = config.retry.max_attempts, retry_base_ms = 1000, retry_max_ms = 60000;
  int breaker_open_wait_ms = 10000, breaker_minimum_calls = config.breaker.minimum_calls,
      breaker_window = config.breaker.window_size;
  double breaker_failure_rate = config.breaker.failure_rate_threshold;
  int min_free_mb = 64;
  auto& o = host.options();
  o.add("db", &db, "Outbox database file (default: <state-dir>/outbox-uploader.db)");
  o.add("target", &target_config.kind, "Where items go: filesystem, webhook or azure-devops");
  o.add("output-root", &target_config.output_root,
        "filesystem: the output folder, files land in <root>/<job_id>/<path> (default: <state-dir>/delivered)");
  o.add("webhook-url", &target_config.webhook_url, "webhook: the URL items are POSTed to");
  o.add("webhook-token-file", &webhook_token_file,
        "webhook: file holding a bearer token (or env AGENTLINE_WEBHOOK_TOKEN)");
  o.add("ado-org-url", &target_config.ado_org_url, "azure-devops: https://dev.azure.com/<org>");
  o.add("ado-project", &target_config.ado_project, "azure-devops: the project");
  o.add("ado-pat-file", &ado_pat_file, "azure-devops: file holding the PAT (or env AGENTLINE_ADO_PAT)");
  o.add("ado-file-type", &target_config.ado_file_type, "azure-devops: work item type of a delivered file");
  o.add("upload-timeout-ms", &timeout_ms, "Timeout of one upload call");
  o.add("upload-concurrency", &config.concurrency, "Uploads running at once");
  o.add("max-attempts", &max_attempts, "Attempts per item before it is marked failed (and dead-lettered)");
  o.add("retry-base-ms", &retry_base_ms, "First retry delay (doubles per attempt, with jitter)");
  o.add("retry-max-ms", &retry_max_ms, "Longest retry delay");
  o.add("batch-min", &config.batch.min_batch, "Adaptive batcher: smallest batch");
  o.add("batch-max", &config.batch.max_batch, "Adaptive batcher: largest batch");
  o.add("breaker-failure-rate", &breaker_failure_rate, "Target circuit breaker: failure rate (percent) that opens it");
  o.add("breaker-minimum-calls", &breaker_minimum_calls, "Target circuit breaker: calls before the rate counts");
  o.add("breaker-window", &breaker_window, "Target circuit breaker: calls in the sliding window");
  o.add("breaker-open-wait-ms", &breaker_open_wait_ms, "Target circuit breaker: time open before probing");
  std::string parent_wait = "30m";
  o.add("parent-wait", &parent_wait,
        "A child whose parent never arrives fails (parent_missing, dead-lettered) this long after it was staged "
        "(500ms, 30s, 90m, 12h, 7d); one whose parent failed fails at once");
  o.add("min-free-mb", &min_free_mb, "Not ready while the outbox's volume has less free space than this");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;

  std::unique_ptr<agentline::outbox::Target> target;
  try {
    if (db.empty()) db = (std::filesystem::path(host.common().state_dir) / "outbox-uploader.db").string();
    if (target_config.output_root.empty())
      target_config.output_root = (std::filesystem::path(host.common().state_dir) / "delivered").string();
    target_config.timeout = std::chrono::milliseconds(timeout_ms);
    target_config.webhook_token = agentline::config::read_secret(webhook_token_file, "AGENTLINE_WEBHOOK_TOKEN");
    target_config.ado_pat = agentline::config::read_secret(ado_pat_file, "AGENTLINE_ADO_PAT");
    config.retry.max_attempts = max_attempts;
    config.retry.base = std::chrono::milliseconds(retry_base_ms);
    config.retry.max_delay = std::chrono::milliseconds(retry_max_ms);
    config.retry.validate();
    config.batch.initial_batch = std::clamp(config.batch.initial_batch, config.batch.min_batch, config.batch.max_batch);
    config.batch.validate();
    config.breaker.failure_rate_threshold = breaker_failure_rate;
    config.breaker.minimum_calls = breaker_minimum_calls;
    config.breaker.window_size = breaker_window;
    config.breaker.open_wait = std::chrono::milliseconds(breaker_open_wait_ms);
    config.breaker.validate();
    config.parent_wait = agentline::config::parse_duration(parent_wait);
    target = agentline::outbox::make_target(target_config);
  } catch (const std::exception& e) {
    std::cerr << "outbox-uploader: configuration error: " << e.what() << "\n";
    return 2;
  }
  std::unique_ptr<agentline::outbox::OutboxStore> store;
  try {
    store = std::make_unique<agentline::outbox::OutboxStore>(db);
  } catch (const std::exception& e) {
    std::cerr << "outbox-uploader: cannot open the outbox: " << e.what() << "\n";
    return 1;
  }
  spdlog::info("outbox {} -> target {}", db, target->name());
  auto producer = std::make_shared<agentline::kafka::Producer>(host.kafka_settings(), "outbox-uploader-events");
  agentline::outbox::Uploader uploader(config, *store, *target, producer, host.catalog(), *host.registry(),
                                       "outbox-uploader",
                                       host.common().group_id.empty() ? "outbox-uploader" : host.common().group_id);
  host.add_metrics([&](auto& families) { uploader.append_metrics(families); });
  host.add_route("GET /stats",
                 [&](const std::string&) { return std::pair<int, std::string>(200, uploader.stats_json()); });

  // Readiness drops while the outbox's volume is nearly full (staging would fail).
  agentline::storage::VolumeWatch volume("outbox", db,
                                         static_cast<std::uint64_t>(std::max(0, min_free_mb)) * 1024 * 1024,
                                         host.health(), *host.registry());
  // Scale-in and rebalances never strand staged work (docs/delivery.md).
  host.set_on_revoked([&](const auto& revoked) { uploader.hand_over(revoked); });
  uploader.start();
  const int rc = host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter&) {
    return uploader.stage(record);
  });
  uploader.stop();
  producer->flush(std::chrono::seconds(10));
  return rc;
}
