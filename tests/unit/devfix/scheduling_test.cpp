// dev-fix-worker's share of the scheduling: the tenant a task is queued under, tenants' weights,
// the per-tenant quota that holds a tenant in place, and the adaptive limit on tasks generating
// fed by the backend's answers. ManualClock only.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <stdexcept>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/topic_catalog.h"
#include "dev_fix_worker.h"
#include "worker_options.h"

namespace agentline::devfix {
namespace {

kafka::InboundRecord task_record(const std::string& id, const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json payload = {{"path", "pkg/" + id + ".py"}, {"description", "write " + id}};
  payload.update(extra);
  kafka::InboundRecord r;
  r.topic = "tasks.normal";
  r.key = id;
  r.value = nlohmann::json{{"id", "m-" + id},
                           {"task_id", id},
                           {"job_id", "j"},
                           {"type", "DEV_TASK"},
                           {"created_at", events::now_iso8601()},
                           {"payload", payload}}
                .dump();
  return r;
}

struct Collect final : kafka::Emitter {
  std::vector<kafka::OutgoingRecord> records;
  void emit(kafka::OutgoingRecord record) override { records.push_back(std::move(record)); }
};

// A backend that answers 429 while `overloaded`, else a small file.
class ScriptedBackend final : public Generator {
 public:
  explicit ScriptedBackend(std::atomic<bool>& overloaded) : overloaded_(overloaded) {}
  Generation generate(const GenerationRequest&) override {
    if (overloaded_) throw GenerationError(GenerationError::Kind::kRateLimited, "HTTP 429");
    return {"print(1)\n", 10, 10, 0, "m", "stop"};
  }
  std::string backend() const override { return "scripted"; }
  std::string model() const override { return "m"; }

 private:
  std::atomic<bool>& overloaded_;
};

struct Fixture {
  resilience::ManualClock clock;
  prometheus::Registry registry;
  kafka::TopicCatalog catalog = kafka::TopicCatalog::load("");
  std::atomic<bool> overloaded{false};

  std::unique_ptr<DevFixWorker> worker(WorkerConfig config) {
    config.batch_max_files = 1;
    return std::make_unique<DevFixWorker>(catalog, std::make_unique<ScriptedBackend>(overloaded), config, registry,
                                          clock);
  }
};

TEST(Scheduling, ATaskIsQueuedUnderItsTenant) {
  EXPECT_EQ(DevFixWorker::tenant_of(task_record("a", {{"tenant", "acme"}})), "acme");
  EXPECT_EQ(DevFixWorker::tenant_of(task_record("b")), "default") << "a task naming no tenant";
  kafka::InboundRecord junk;
  junk.value = "not json";
  EXPECT_EQ(DevFixWorker::tenant_of(junk), "") << "its handler dead-letters it; no tenant is charged";
}

TEST(Scheduling, ATenantOverItsQuotaWaitsWhileOthersGoOnAndComesBackWhenItRefills) {
  Fixture f;
  WorkerConfig config;
  config.tenant_rate_per_second = 1;
  config.tenant_burst = 2;
  auto worker = f.worker(config);
  EXPECT_EQ(worker->admit("acme").count(), 0);
  EXPECT_EQ(worker->admit("acme").count(), 0);
  const auto wait = worker->admit("acme");
  EXPECT_GT(wait.count(), 0) << "a burst of two, then one a second";
  EXPECT_LE(wait.count(), 1000);
  EXPECT_EQ(worker->admit("globex").count(), 0) << "another tenant is not held";
  f.clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(worker->admit("acme").count(), 0);
  EXPECT_EQ(worker->stats()["tenants"]["throttled"], 1);
}

TEST(Scheduling, TenantWeightsAreParsedAndUnlistedTenantsWeighOne) {
  Fixture f;
  WorkerConfig config;
  config.tenant_weights = parse_tenant_weights("gold=3,silver=1.5");
  auto worker = f.worker(config);
  EXPECT_EQ(worker->tenant_weight("gold"), 3);
  EXPECT_EQ(worker->tenant_weight("silver"), 1.5);
  EXPECT_EQ(worker->tenant_weight("anyone"), 1);
  EXPECT_THROW(parse_tenant_weights("gold"), std::invalid_argument);
  EXPECT_THROW(parse_tenant_weights("gold=0"), std::invalid_argument);
  EXPECT_THROW(parse_tenant_weights("=2"), std::invalid_argument);
}

TEST(Scheduling, A429HalvesTheTasksGeneratingAtOnceAndSuccessesGrowThemBackAsFarAsTheyAreUsed) {
  Fixture f;
  WorkerConfig config;
  config.concurrency = {1, 16, 2};
  auto worker = f.worker(config);
  EXPECT_EQ(worker->concurrency_limit(), 2);
  Collect out;
  f.overloaded = true;
  auto failure = worker->handle(task_record("t1"), out);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind, kafka::FailureKind::kBackoff) << "a 429 waits; it is not the task's fault";
  EXPECT_TRUE(out.records.empty());
  EXPECT_EQ(worker->concurrency_limit(), 1);
  f.overloaded = false;
  f.clock.advance(std::chrono::seconds(2));  // Retry-After has passed
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(worker->handle(task_record("s" + std::to_string(i)), out));
  EXPECT_EQ(out.records.size(), 20u);
  // One task at a time: the limit grows while it is at most twice what is used, then stops.
  EXPECT_EQ(worker->concurrency_limit(), 3);
  EXPECT_EQ(worker->stats()["concurrency"]["max"], 16);
}

}  // namespace
}  // namespace agentline::devfix
