#include "router_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>

#include "agentline/config/options.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"

namespace agentline::router {

namespace {

// Each record written and acknowledged before the next (resent job checks).
struct Acknowledged : kafka::Emitter {
  kafka::Producer& producer;
  explicit Acknowledged(kafka::Producer& p) : producer(p) {}
  void emit(kafka::OutgoingRecord r) override {
    const auto report = producer.send_and_wait(r);
    if (!report.ok) throw std::runtime_error("cannot write " + r.topic + ": " + report.error);
  }
};

// Tombstones go out together and are flushed once (a 10,000-file job is 10,001 of them); one
// that fails leaves its key on the topic, and the job is expired again after a restart.
struct Batch : kafka::Emitter {
  kafka::Producer& producer;
  std::atomic<int> failed{0};
  explicit Batch(kafka::Producer& p) : producer(p) {}
  void emit(kafka::OutgoingRecord r) override {
    producer.send(r, [this](const kafka::DeliveryReport& report) {
      if (!report.ok) ++failed;
    });
  }
};

}  // namespace

RouterState::RouterState(EventRouter& router, const kafka::KafkaSettings& settings, const kafka::TopicCatalog& catalog,
                         std::chrono::milliseconds retention)
    : router_(router),
      retention_(retention),
      producer_(settings, "router-side"),
      progress_(settings, catalog.topic("jobs.progress"), "agentline-router"),
      plans_(settings, catalog.topic("jobs.plans"), "agentline-router-plans") {}

RouterState::~RouterState() {
  retention_task_.reset();
  progress_.stop();
  plans_.stop();
}

void RouterState::load_progress(const kafka::InboundRecord& r) {
  if (r.tombstone) {
    if (r.key) router_.progress().drop(*r.key);  // another replica's retention
    return;
  }
  // Its own records are applied already: parsing them again cost an eighth of its CPU.
  if (r.header(kafka::headers::kOrigin) == router_.origin()) return;
  auto state = nlohmann::json::parse(r.value, nullptr, false);
  if (!state.is_discarded()) router_.progress().load(state);
}

void RouterState::load_plan(const kafka::InboundRecord& r) {
  if (!r.key || r.header(kafka::headers::kOrigin) == router_.origin()) return;
  if (r.tombstone) {
    router_.gate().drop(*r.key);
    return;
  }
  auto state = nlohmann::json::parse(r.value, nullptr, false);
  if (!state.is_discarded()) router_.gate().load(*r.key, state);
}

void RouterState::restore() {
  auto progress = [this](const kafka::InboundRecord& r) { load_progress(r); };
  auto plans = [this](const kafka::InboundRecord& r) { load_plan(r); };
  spdlog::info("read {} progress record(s) back", progress_.catch_up(progress, std::chrono::seconds(60)));
  spdlog::info("read {} plan record(s) back", plans_.catch_up(plans, std::chrono::seconds(60)));
  progress_.follow(progress);
  plans_.follow(plans);
  Acknowledged out(producer_);
  if (const int n = router_.resend_job_checks(out)) spdlog::info("asked again for {} job check(s) that were out", n);
  if (retention_.count() <= 0) return;
  const auto every =
      std::clamp<std::chrono::milliseconds>(retention_ / 4, std::chrono::seconds(1), std::chrono::minutes(1));
  retention_task_ = std::make_unique<service::PeriodicTask>("retention", every, [this] {
    expire_now();
    return false;
  });
}

int RouterState::expire_now() {
  const auto cutoff = std::chrono::system_clock::now() - retention_;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cutoff.time_since_epoch()).count();
  Batch batch(producer_);
  const int n = router_.expire_jobs(batch, events::iso8601(ms));
  producer_.flush(std::chrono::seconds(30));
  if (n > 0 || batch.failed > 0)
    spdlog::info("retention: {} finished job(s) older than {} forgotten, {} tombstone(s) not written", n,
                 config::format_duration(retention_), batch.failed.load());
  return n;
}

}  // namespace agentline::router
