// router: events (+ tasks.submitted, dlq) -> qa.requests, deploy.requests, tasks.fix, dlq, jobs.progress.
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/service/service_host.h"
#include "event_router.h"

int main(int argc, char** argv) {
  agentline::service::ServiceHost host(
      "router", "Routes events by the routing table, runs the fix loop, and tracks job progress.",
      {"events", "tasks.submitted", "dlq"});
  // Read, not owned: priority-assigner dead-letters bad tasks; a DLQ record is never dead-lettered
  // again (its file is shown dead-lettered on its job).
  host.set_observed_topics({"tasks.submitted", "dlq"});
  std::string routes_file;
  int dedup_window = 100000;
  host.options().add("routes", &routes_file, "Routing table file (JSON); empty: the built-in table");
  host.options().add("dedup-window", &dedup_window, "Event ids remembered to drop redeliveries");
  bool no_job_checks = false;
  agentline::router::JobCheckOptions job_checks;
  host.options().add_flag("no-job-checks", &no_job_checks,
                          "Deliver a planned job's files as they pass, without checking the job as a whole");
  host.options().add_flag("deliver-before-job-checks", &job_checks.deliver_before,
                          "Deliver files as they pass; the job is still checked as a whole, and marked if it fails");
  bool reviews = false;
  std::string review_rules_file;
  host.options().add_flag("reviews", &reviews,
                          "Review passed files by model, with the built-in review rules (docs/qa.md); off by default");
  host.options().add("review-rules", &review_rules_file, "Review rules file (JSON); implies --reviews");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;

  std::optional<agentline::router::RoutingTable> table;
  std::optional<agentline::router::ReviewRules> review_rules;
  try {
    table = agentline::router::RoutingTable::load(routes_file, host.catalog());
    if (reviews || !review_rules_file.empty()) review_rules = agentline::router::ReviewRules::load(review_rules_file);
  } catch (const std::exception& e) {
    std::cerr << "router: configuration error: " << e.what() << "\n";
    return 2;
  }
  job_checks.enabled = !no_job_checks;
  agentline::router::EventRouter router(host.catalog(), std::move(*table), *host.registry(),
                                        static_cast<std::size_t>(std::max(1, dedup_window)), job_checks);
  if (review_rules) router.set_reviews(std::move(*review_rules));

  // Progress survives restarts and rebalances: read it back, then follow other replicas.
  agentline::kafka::KafkaSettings settings{host.common().bootstrap_servers, host.common().kafka,
                                           host.common().state_dir};
  agentline::kafka::TopicFollower progress(settings, host.catalog().topic("jobs.progress"), "agentline-router");
  auto load = [&](const agentline::kafka::InboundRecord& r) {
    if (r.tombstone) return;
    // Its own records are applied already: parsing them again cost an eighth of its CPU.
    if (r.header(agentline::kafka::headers::kOrigin) == router.origin()) return;
    auto state = nlohmann::json::parse(r.value, nullptr, false);
    if (!state.is_discarded()) router.progress().load(state);
  };
  // The planned jobs' release state likewise (dependency_gate.h).
  agentline::kafka::TopicFollower plans(settings, host.catalog().topic("jobs.plans"), "agentline-router-plans");
  auto load_plan = [&](const agentline::kafka::InboundRecord& r) {
    if (r.tombstone || !r.key || r.header(agentline::kafka::headers::kOrigin) == router.origin()) return;
    auto state = nlohmann::json::parse(r.value, nullptr, false);
    if (!state.is_discarded()) router.gate().load(*r.key, state);
  };
  try {
    const auto n = progress.catch_up(load, std::chrono::seconds(60));
    spdlog::info("read {} progress record(s) back", n);
    const auto m = plans.catch_up(load_plan, std::chrono::seconds(60));
    spdlog::info("read {} plan record(s) back", m);
    progress.follow(load);
    plans.follow(load_plan);
    // Job checks that were out when a router stopped: asked for again (docs/qa.md).
    struct Send : agentline::kafka::Emitter {
      agentline::kafka::Producer producer;
      explicit Send(const agentline::kafka::KafkaSettings& s) : producer(s, "router-resend") {}
      void emit(agentline::kafka::OutgoingRecord r) override {
        const auto report = producer.send_and_wait(r);
        if (!report.ok) throw std::runtime_error("cannot resend a job check: " + report.error);
      }
    } send(settings);
    if (const int n = router.resend_job_checks(send)) spdlog::info("asked again for {} job check(s) that were out", n);
  } catch (const std::exception& e) {
    spdlog::error("cannot read job progress back: {}", e.what());
    return 1;
  }
  return host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter& out) {
    return router.handle(record, out);
  });
}
