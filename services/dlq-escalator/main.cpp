// dlq-escalator: the DLQ -> SQLite store, ESCALATED events, a chat digest per window, and the
// commands and admin routes that read and replay the store (store_commands.h).
#include <spdlog/spdlog.h>

#include "agentline/service/service_host.h"
#include "agentline/storage/volume_watch.h"
#include "dlq_store.h"
#include "escalator.h"
#include "store_commands.h"

int main(int argc, char** argv) {
  using namespace agentline;
  if (auto exit_code = dlq::run_store_command(argc, argv)) return *exit_code;
  service::ServiceHost host(
      "dlq-escalator",
      "Stores dead-lettered records in SQLite, escalates each (ESCALATED events), sends one chat digest per window.\n"
      "Commands: dlq-escalator list [filters] | replay [filters] [--dry-run] (with --db).",
      {"dlq"});
  dlq::EscalatorOptions options;
  options.bind(host.options());
  if (auto exit_code = host.configure(
          argc, argv, [&] { options.resolve(host.common().state_dir, host.catalog().topic("escalations")); }))
    return *exit_code;
  std::unique_ptr<dlq::DlqStore> store;
  if (!host.opened("the DLQ store", [&] { store = std::make_unique<dlq::DlqStore>(options.db); })) return 1;
  dlq::Escalator escalator(options.config, *store, *host.registry());
  storage::VolumeWatch volume("dlq", options.db,
                              static_cast<std::uint64_t>(std::max(0, options.min_free_mb)) * 1024 * 1024, host.health(),
                              *host.registry());
  dlq::StoreRoutes routes(*store, host.kafka_settings());
  routes.add_to(host);
  spdlog::info(
      "DLQ store {}; digest {}", options.db,
      options.config.digest_url.empty() ? "off" : "every " + config::format_duration(options.config.digest_window));
  escalator.start_digest();
  const int rc =
      host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return escalator.handle(record, out); });
  escalator.stop_digest();
  return rc;
}
