// dlq-escalator: the DLQ -> SQLite store, ESCALATED events, a chat digest per window, and the
// commands and admin routes that read and replay the store (store_commands.h).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "agentline/observability/metric_families.h"
#include "agentline/service/service_host.h"
#include "agentline/storage/volume_watch.h"
#include "dlq_store.h"
#include "escalator.h"
#include "store_commands.h"

int main(int argc, char** argv) {
  using namespace agentline;
  if (argc > 1 && (std::string(argv[1]) == "list" || std::string(argv[1]) == "replay")) {
    try {
      return dlq::run_store_command(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "dlq-escalator: " << e.what() << "\n";
      return 1;
    }
  }
  service::ServiceHost host(
      "dlq-escalator",
      "Stores dead-lettered records in SQLite, escalates each (ESCALATED events), sends one chat digest per window.\n"
      "Commands: dlq-escalator list [filters] | replay [filters] [--dry-run] (with --db).",
      {"dlq"});
  std::string db, digest_token_file;
  dlq::EscalatorConfig config;
  int min_free_mb = 64;
  auto& o = host.options();
  o.add("db", &db, "DLQ store file (default: <state-dir>/dlq-escalator.db)");
  o.add("digest-url", &config.digest_url, "Webhook (Slack-compatible) for the digest; empty: no digest");
  o.add("digest-token-file", &digest_token_file,
        "File holding a bearer token for the digest webhook (or env AGENTLINE_DIGEST_TOKEN)");
  o.add("digest-window-ms", &config.digest_window, "Records of this window go into one digest message");
  o.add("min-free-mb", &min_free_mb, "Not ready while the store's volume has less free space than this");
  std::unique_ptr<dlq::DlqStore> store;
  if (auto exit_code = host.configure(argc, argv, [&] {
        if (db.empty()) db = (std::filesystem::path(host.common().state_dir) / "dlq-escalator.db").string();
        config.digest_token = config::read_secret(digest_token_file, "AGENTLINE_DIGEST_TOKEN");
        if (config.digest_window < std::chrono::milliseconds(100))
          throw std::invalid_argument("--digest-window-ms must be at least 100");
        config.escalations_topic = host.catalog().topic("escalations");
        config.dashboard_hint =
            "List them: `dlq-escalator list --db " + db + " --since 1h`; replay: `dlq-escalator replay --dry-run ...`";
      }))
    return *exit_code;
  try {
    store = std::make_unique<dlq::DlqStore>(db);
  } catch (const std::exception& e) {
    std::cerr << "dlq-escalator: cannot open the DLQ store: " << e.what() << "\n";
    return 1;
  }
  dlq::Escalator escalator(config, *store, *host.registry());
  storage::VolumeWatch volume("dlq", db, static_cast<std::uint64_t>(std::max(0, min_free_mb)) * 1024 * 1024,
                              host.health(), *host.registry());
  host.add_metrics([&](auto& families) {
    auto& stored = observability::family(families, "agentline_dlq_stored_records",
                                         "Records in the DLQ store, by reason", prometheus::MetricType::Gauge);
    try {
      for (const auto& [reason, n] : store->counts_by_reason())
        observability::add_sample(stored, {{"reason", reason}}, static_cast<double>(n));
    } catch (const std::exception& e) {
      spdlog::warn("dlq metrics: {}", e.what());
    }
  });
  dlq::StoreRoutes routes(*store, host.kafka_settings());
  routes.add_to(host);
  spdlog::info("DLQ store {}; digest {}", db,
               config.digest_url.empty() ? "off" : "every " + config::format_duration(config.digest_window));
  escalator.start_digest();
  const int rc =
      host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return escalator.handle(record, out); });
  escalator.stop_digest();
  return rc;
}
