// router: events (+ tasks.submitted, dlq) -> qa.requests, deploy.requests, tasks.fix, dlq, jobs.progress.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agentline/events/timestamps.h"
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
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);
  host.options().add("job-retention", &retention,
                     "Finished jobs are kept this long after their last change (500ms, 30s, 90m, 12h, 7d), then "
                     "tombstoned on jobs.progress and jobs.plans and forgotten; 0: kept forever",
                     std::chrono::seconds(1));
  bool reviews = false;
  std::string review_rules_file;
  host.options().add_flag("reviews", &reviews,
                          "Review passed files by model, with the built-in review rules (docs/qa.md); off by default");
  host.options().add("review-rules", &review_rules_file, "Review rules file (JSON); implies --reviews");
  std::optional<agentline::router::RoutingTable> table;
  std::optional<agentline::router::ReviewRules> review_rules;
  if (auto exit_code = host.configure(argc, argv, [&] {
        table = agentline::router::RoutingTable::load(routes_file, host.catalog());
        if (reviews || !review_rules_file.empty())
          review_rules = agentline::router::ReviewRules::load(review_rules_file);
      }))
    return *exit_code;
  job_checks.enabled = !no_job_checks;
  agentline::router::EventRouter router(host.catalog(), std::move(*table), *host.registry(),
                                        static_cast<std::size_t>(std::max(1, dedup_window)), job_checks);
  if (review_rules) router.set_reviews(std::move(*review_rules));

  // Progress survives restarts and rebalances: read it back, then follow other replicas.
  agentline::kafka::TopicFollower progress(host.kafka_settings(), host.catalog().topic("jobs.progress"),
                                           "agentline-router");
  auto load = [&](const agentline::kafka::InboundRecord& r) {
    if (r.tombstone) {
      if (r.key) router.progress().drop(*r.key);  // another replica's retention
      return;
    }
    // Its own records are applied already: parsing them again cost an eighth of its CPU.
    if (r.header(agentline::kafka::headers::kOrigin) == router.origin()) return;
    auto state = nlohmann::json::parse(r.value, nullptr, false);
    if (!state.is_discarded()) router.progress().load(state);
  };
  // The planned jobs' release state likewise (dependency_gate.h).
  agentline::kafka::TopicFollower plans(host.kafka_settings(), host.catalog().topic("jobs.plans"),
                                        "agentline-router-plans");
  auto load_plan = [&](const agentline::kafka::InboundRecord& r) {
    if (!r.key || r.header(agentline::kafka::headers::kOrigin) == router.origin()) return;
    if (r.tombstone) {
      router.gate().drop(*r.key);
      return;
    }
    auto state = nlohmann::json::parse(r.value, nullptr, false);
    if (!state.is_discarded()) router.gate().load(*r.key, state);
  };
  // Records the router writes outside a handler (resent job checks, retention's tombstones).
  struct Send : agentline::kafka::Emitter {
    agentline::kafka::Producer producer;
    explicit Send(const agentline::kafka::KafkaSettings& s) : producer(s, "router-side") {}
    void emit(agentline::kafka::OutgoingRecord r) override {
      const auto report = producer.send_and_wait(r);
      if (!report.ok) throw std::runtime_error("cannot write " + r.topic + ": " + report.error);
    }
  } send(host.kafka_settings());
  try {
    const auto n = progress.catch_up(load, std::chrono::seconds(60));
    spdlog::info("read {} progress record(s) back", n);
    const auto m = plans.catch_up(load_plan, std::chrono::seconds(60));
    spdlog::info("read {} plan record(s) back", m);
    progress.follow(load);
    plans.follow(load_plan);
    // Job checks that were out when a router stopped: asked for again (docs/qa.md).
    if (const int n = router.resend_job_checks(send)) spdlog::info("asked again for {} job check(s) that were out", n);
  } catch (const std::exception& e) {
    spdlog::error("cannot read job progress back: {}", e.what());
    return 1;
  }
  // Retention: finished jobs older than --job-retention are tombstoned, looked for every quarter
  // of the retention (at least every second, at most every minute).
  std::mutex retention_mu;
  std::condition_variable retention_cv;
  bool stopping = false;
  const auto scan_every =
      std::clamp<std::chrono::milliseconds>(retention / 4, std::chrono::seconds(1), std::chrono::minutes(1));
  // Tombstones go out together and are flushed once (a 10,000-file job is 10,001 of them); one
  // that fails leaves its key on the topic, and the job is expired again after a restart.
  struct Batch : agentline::kafka::Emitter {
    agentline::kafka::Producer& producer;
    std::atomic<int> failed{0};
    explicit Batch(agentline::kafka::Producer& p) : producer(p) {}
    void emit(agentline::kafka::OutgoingRecord r) override {
      producer.send(r, [this](const agentline::kafka::DeliveryReport& report) {
        if (!report.ok) ++failed;
      });
    }
  };
  std::thread retention_thread([&] {
    std::unique_lock lock(retention_mu);
    while (retention.count() > 0 && !retention_cv.wait_for(lock, scan_every, [&] { return stopping; })) {
      const auto cutoff = std::chrono::system_clock::now() - retention;
      try {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cutoff.time_since_epoch()).count();
        Batch batch(send.producer);
        const int n = router.expire_jobs(batch, agentline::events::iso8601(ms));
        send.producer.flush(std::chrono::seconds(30));
        if (n > 0 || batch.failed > 0)
          spdlog::info("retention: {} finished job(s) older than {} forgotten, {} tombstone(s) not written", n,
                       agentline::config::format_duration(retention), batch.failed.load());
      } catch (const std::exception& e) {
        spdlog::warn("retention: {}", e.what());
      }
    }
  });
  const int rc = host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter& out) {
    return router.handle(record, out);
  });
  {
    std::lock_guard lock(retention_mu);
    stopping = true;
  }
  retention_cv.notify_all();
  retention_thread.join();
  return rc;
}
