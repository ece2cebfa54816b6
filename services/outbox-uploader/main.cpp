// outbox-uploader: deploy.requests -> SQLite outbox -> target (filesystem | webhook | Azure DevOps),
// with UPLOADED / UPLOAD_FAILED events. Also the recovery commands (recovery.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>

#include "agentline/kafka/producer.h"
#include "agentline/resilience/worker_pool.h"
#include "agentline/service/service_host.h"
#include "agentline/storage/volume_watch.h"
#include "outbox_store.h"
#include "recovery.h"
#include "uploader.h"
#include "uploader_options.h"

int main(int argc, char** argv) {
  using namespace agentline;
  if (argc > 1 && (std::string(argv[1]) == "status" || std::string(argv[1]) == "retry-failed")) {
    try {
      return outbox::run_recovery_command(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "outbox-uploader: " << e.what() << "\n";
      return 1;
    }
  }
  service::ServiceHost host("outbox-uploader",
                            "Stages deploy.requests in a SQLite outbox and uploads each item exactly once "
                            "(filesystem, webhook or Azure DevOps).\n"
                            "Recovery: outbox-uploader status --job J | retry-failed --job J (with --db).",
                            {"deploy.requests"});
  outbox::UploaderOptions options;
  options.bind(host.options());
  // A handler stages its record and waits for the group commit it joins: the more wait together,
  // the fewer syncs of the disk per record (bench/REPORT.md 2f: 64 staged 1.3x what 16 did).
  // 64, fewer when the memory holds less than 8 MiB per record.
  host.set_in_flight_rule([](const config::ContainerResources& r) {
    return static_cast<int>(std::clamp<std::int64_t>(r.memory_bytes / (8 << 20), 16, 64));
  });
  std::unique_ptr<outbox::Target> target;
  if (auto exit_code = host.configure(argc, argv, [&] {
        options.resolve(host.common().state_dir);
        // Uploads wait on the network: 4 per CPU of quota, as the memory allows.
        options.uploader.concurrency = host.size_pool(
            "uploads", options.uploader.concurrency,
            [](const config::ContainerResources& r) { return resilience::WorkerPoolConfig::sized_for(r).max_threads; });
        target = outbox::make_target(options.target);
      }))
    return *exit_code;
  std::unique_ptr<outbox::OutboxStore> store;
  if (!host.opened("the outbox", [&] { store = std::make_unique<outbox::OutboxStore>(options.db); })) return 1;
  spdlog::info("outbox {} -> target {}", options.db, target->name());
  auto producer = std::make_shared<kafka::Producer>(host.kafka_settings(), "outbox-uploader-events");
  outbox::Uploader uploader(options.uploader, *store, *target, producer, host.catalog(), *host.registry(),
                            "outbox-uploader", host.common().group_id);
  host.add_metrics([&](auto& families) { uploader.append_metrics(families); });
  host.add_admin_route("GET", "/stats", [&](const std::string&) { return std::pair{200, uploader.stats_json()}; });
  // Readiness drops while the outbox's volume is nearly full (staging would fail).
  storage::VolumeWatch volume("outbox", options.db,
                              static_cast<std::uint64_t>(std::max(0, options.min_free_mb)) * 1024 * 1024, host.health(),
                              *host.registry());
  // Scale-in and rebalances never strand staged work (docs/delivery.md).
  host.set_on_revoked([&](const auto& revoked) { uploader.hand_over(revoked); });
  uploader.start();
  const int rc = host.run([&](const kafka::InboundRecord& record, kafka::Emitter&) { return uploader.stage(record); });
  uploader.stop();
  producer->flush(std::chrono::seconds(10));
  return rc;
}
