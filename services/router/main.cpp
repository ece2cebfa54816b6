// router: events (+ tasks.submitted, dlq) -> qa.requests, deploy.requests, tasks.fix, dlq, jobs.progress.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agentline/service/service_host.h"
#include "event_router.h"
#include "router_options.h"
#include "router_state.h"

namespace {
constexpr int kRouterHandoffBatch = 8;
}  // namespace

int main(int argc, char** argv) {
  using namespace agentline;
  service::ServiceHost host("router", "Routes events by the routing table, runs the fix loop, and tracks job progress.",
                            {"events", "tasks.submitted", "dlq"});
  // Read, not owned: priority-assigner dead-letters bad tasks; a DLQ record is never dead-lettered
  // again (its file is shown dead-lettered on its job).
  host.set_observed_topics({"tasks.submitted", "dlq"});
  // Its handler computes and never waits (producing is asynchronous): a worker runs a batch per
  // wake-up instead of one record per thread switch (bench/REPORT.md 2i).
  host.set_handoff_batch(kRouterHandoffBatch);
  router::RouterOptions options;
  options.bind(host.options());
  std::optional<router::RoutingTable> table;
  std::optional<router::ReviewRules> review_rules;
  if (auto exit_code = host.configure(argc, argv, [&] {
        table = router::RoutingTable::load(options.routes_file, host.catalog());
        if (options.reviews || !options.review_rules_file.empty())
          review_rules = router::ReviewRules::load(options.review_rules_file);
        options.job_checks.enabled = !options.no_job_checks;
      }))
    return *exit_code;
  router::EventRouter router(host.catalog(), std::move(*table), *host.registry(),
                             static_cast<std::size_t>(std::max(1, options.dedup_window)), options.job_checks);
  if (review_rules) router.set_reviews(std::move(*review_rules));
  // Before the state and the consumer, so that it outlives both: it produces what waits at exit.
  std::optional<router::CoalescingPublisher> progress;
  if (options.progress_interval.count() > 0) {
    progress.emplace(host.kafka_settings(), options.progress_interval, *host.registry());
    router.set_progress_publisher(&*progress);
  }
  router::RouterState state(router, host.kafka_settings(), host.catalog(), options.retention);
  try {
    state.restore();
  } catch (const std::exception& e) {
    spdlog::error("cannot read job progress back: {}", e.what());
    return 1;
  }
  return host.run([&](const kafka::InboundRecord& record, kafka::Emitter& out) { return router.handle(record, out); });
}
