// dev-fix-worker: tasks.{fix,critical,high,normal,low} -> events (FILE_COMPLETED / FILE_FAILED).
#include <spdlog/spdlog.h>

#include "agentline/cache/cache_replicator.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/service/service_host.h"
#include "dev_fix_worker.h"
#include "worker_options.h"

int main(int argc, char** argv) {
  using namespace agentline;
  const std::vector<std::string> priorities{"tasks.fix", "tasks.critical", "tasks.high", "tasks.normal", "tasks.low"};
  service::ServiceHost host("dev-fix-worker", "Generates files for dev and fix tasks, highest priority first.",
                            priorities);
  devfix::WorkerOptions options;
  options.bind(host.options());
  std::unique_ptr<devfix::DevFixWorker> worker;
  if (auto exit_code = host.configure(argc, argv, [&] {
        worker = std::make_unique<devfix::DevFixWorker>(host.catalog(), options.make_generator(),
                                                        options.worker_config(host.common().max_in_flight),
                                                        *host.registry());
        for (auto& [generator, limits] : options.make_fallbacks()) worker->add_fallback(std::move(generator), limits);
      }))
    return *exit_code;
  host.set_priority_order(priorities);
  host.set_fair_queuing(
      {&devfix::DevFixWorker::tenant_of, [&](const std::string& tenant) { return worker->tenant_weight(tenant); },
       [&](const std::string& tenant, const kafka::InboundRecord&) { return worker->admit(tenant); }},
      options.read_ahead());
  host.set_concurrency_limit([&] { return worker->concurrency_limit(); });
  const auto limits = worker->stats()["concurrency"];
  spdlog::info("generator backend: {}; tasks generating at once: {} to {}, starting at {}", options.describe(),
               limits["min"].get<int>(), limits["max"].get<int>(), limits["limit"].get<int>());

  // The result cache shared with the other replicas through cache.results (--cache-share 1).
  std::unique_ptr<cache::CacheReplicator> replicator;
  if (options.share_cache()) {
    replicator = std::make_unique<cache::CacheReplicator>(
        worker->cache(), cache::CacheReplicatorConfig{host.kafka_settings(), host.catalog().topic("cache.results")});
    if (!host.opened("the shared result cache", [&] {
          replicator->warm();
          replicator->start();
        }))
      return 1;
  }
  // Job budgets (docs/llm-economics.md): the router's job summaries say which jobs spent theirs.
  kafka::TopicFollower progress(host.kafka_settings(), host.catalog().topic("jobs.progress"), "dev-fix-worker-budgets");
  const auto on_progress = [&](const kafka::InboundRecord& r) { worker->budgets().apply(r); };
  if (!host.opened("jobs.progress (job budgets)", [&] { progress.catch_up(on_progress, std::chrono::seconds(60)); }))
    return 1;
  progress.follow(on_progress);
  host.add_admin_route("GET", "/stats", [&](const std::string&) { return std::pair{200, worker->stats().dump()}; });
  host.add_admin_route("POST", "/cache/invalidate", [&](const std::string& body) { return worker->invalidate(body); });
  host.add_metrics([&](std::vector<prometheus::MetricFamily>& families) { worker->append_metrics(families); });
  const int rc =
      host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return worker->handle(record, out); });
  progress.stop();
  if (replicator) replicator->stop();
  return rc;
}
