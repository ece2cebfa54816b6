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

// A backend that answers 429 while `overloaded`, is unavailable (a 503) while `down`, else writes a
// small file; it counts its calls.
class ScriptedBackend final : public Generator {
 public:
  explicit ScriptedBackend(std::atomic<bool>& overloaded, std::string model = "m", std::atomic<bool>* down = nullptr,
                           std::atomic<int>* calls = nullptr)
      : overloaded_(overloaded), model_(std::move(model)), down_(down), calls_(calls) {}
  // Reports 100 prompt tokens and every completion token it was allowed.
  Generation generate(const GenerationRequest& request) override {
    if (calls_ != nullptr) ++*calls_;
    if (overloaded_) throw GenerationError(GenerationError::Kind::kRateLimited, "HTTP 429");
    if (down_ != nullptr && *down_) throw GenerationError(GenerationError::Kind::kUnavailable, "HTTP 503");
    return {"print(1)\n", 100, request.max_tokens, 0, model_, "stop"};
  }
  std::string backend() const override { return "scripted"; }
  std::string model() const override { return model_; }

 private:
  std::atomic<bool>& overloaded_;
  std::string model_;
  std::atomic<bool>* down_;
  std::atomic<int>* calls_;
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

TEST(Scheduling, ATenantOverItsOwnTokensWaitsAloneAndATaskThatCanNeverFitFails) {
  Fixture f;
  WorkerConfig config;
  config.tenant_overrides =
      parse_tenant_limits(R"({"acme": {"tokens_per_day": 3000}, "tiny": {"tokens_per_day": 10}})");
  config.default_max_tokens = 1000;
  auto worker = f.worker(config);
  Collect out;
  EXPECT_FALSE(worker->handle(task_record("a1", {{"tenant", "acme"}}), out)) << "1,100 tokens used";
  EXPECT_FALSE(worker->handle(task_record("a2", {{"tenant", "acme"}}), out)) << "2,200 used";
  auto held = worker->handle(task_record("a3", {{"tenant", "acme"}}), out);
  ASSERT_TRUE(held) << "another ~1,100 do not fit the day's 3,000";
  EXPECT_EQ(held->kind, kafka::FailureKind::kHoldKey) << "only acme waits";
  EXPECT_EQ(held->error_class, "tenant_rate_limited");
  EXPECT_FALSE(worker->handle(task_record("g1", {{"tenant", "globex"}}), out)) << "globex has no limit";
  EXPECT_EQ(out.records.size(), 3u);

  EXPECT_FALSE(worker->handle(task_record("t1", {{"tenant", "tiny"}}), out)) << "answered, not held";
  const auto failed = nlohmann::json::parse(out.records.back().value);
  EXPECT_EQ(failed["type"], "FILE_FAILED") << "10 tokens a day never fit a call: the task fails with the reason";
  EXPECT_EQ(failed["payload"]["error_class"], "llm_too_large");
  EXPECT_EQ(worker->stats()["tenants"]["limited"]["acme"]["refused"]["tokens_per_day"], 1);
  EXPECT_THROW(parse_tenant_limits(R"({"acme": {"tokens_per_week": 1}})"), std::invalid_argument);
  EXPECT_THROW(parse_tenant_limits(R"({"acme": {"burst": -1}})"), std::invalid_argument);
}

TEST(Scheduling, ATenantThatSpentItsDollarsAcrossReplicasWaitsAloneUntilTheDayHasRoom) {
  Fixture f;
  WorkerConfig config;
  config.tenant_overrides = parse_tenant_limits(R"({"acme": {"usd_per_day": 0.5}})");
  auto worker = f.worker(config);
  Collect out;
  EXPECT_FALSE(worker->handle(task_record("a1", {{"tenant", "acme"}}), out));
  // Another replica's calls for acme, as the router's job summary on jobs.progress shows them.
  kafka::InboundRecord summary;
  summary.topic = "agentline.jobs.progress";
  summary.key = "other-job";
  summary.value = R"({"job_id": "other-job", "tenant": "acme", "usage": {"tokens": 9000, "cost_usd": 0.75}})";
  summary.timestamp_ms = events::now_ms();
  worker->budgets().apply(summary);
  auto held = worker->handle(task_record("a2", {{"tenant", "acme"}}), out);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->kind, kafka::FailureKind::kHoldKey) << "only acme waits; nothing is dead-lettered";
  EXPECT_EQ(held->error_class, "tenant_budget_spent");
  EXPECT_EQ(held->retry_after, std::chrono::milliseconds(60000)) << "it looks again within a minute";
  EXPECT_FALSE(worker->handle(task_record("g1", {{"tenant", "globex"}}), out)) << "globex has no budget";
  EXPECT_EQ(out.records.size(), 2u);
  EXPECT_FALSE(parse_tenant_limits(R"({"acme": {"usd_per_month": 12.5}})").at("acme").any())
      << "a budget in dollars alone needs no rate limiter";
  EXPECT_THROW(parse_tenant_limits(R"({"acme": {"usd_per_day": -1}})"), std::invalid_argument);
  f.clock.advance(std::chrono::hours(25));
  EXPECT_FALSE(worker->handle(task_record("a2", {{"tenant", "acme"}}), out)) << "a day later acme goes on";
}

TEST(Scheduling, WhileTheBackendRefusesCallsTenantsTakeTurnsForTheNextOne) {
  Fixture f;
  WorkerConfig config;
  config.limits.requests_per_minute = 1;  // one call a minute: every other ask is refused
  auto worker = f.worker(config);
  Collect out;
  EXPECT_FALSE(worker->handle(task_record("a1", {{"tenant", "flood"}}), out));
  auto refused = worker->handle(task_record("a2", {{"tenant", "flood"}}), out);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, kafka::FailureKind::kBackoff) << "the minute is spent: everything waits";
  auto queued = worker->handle(task_record("b1", {{"tenant", "trickle"}}), out);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->kind, kafka::FailureKind::kHoldKey) << "trickle waits its turn, behind flood's";
  EXPECT_EQ(queued->error_class, "llm_turn");
  f.clock.advance(std::chrono::seconds(61));
  EXPECT_TRUE(worker->handle(task_record("b1", {{"tenant", "trickle"}}), out)) << "flood was refused first";
  EXPECT_FALSE(worker->handle(task_record("a2", {{"tenant", "flood"}}), out));
  f.clock.advance(std::chrono::seconds(1));
  EXPECT_TRUE(worker->handle(task_record("a3", {{"tenant", "flood"}}), out)) << "now it is trickle's turn";
  f.clock.advance(std::chrono::seconds(60));
  EXPECT_FALSE(worker->handle(task_record("b1", {{"tenant", "trickle"}}), out))
      << "trickle's call, however many flood has";
  EXPECT_EQ(out.records.size(), 3u);
}

TEST(Scheduling, ATenantThatLeftTheLineLosesItsTurnAfterAWhile) {
  resilience::ManualClock clock;
  TenantTurns turns(clock);
  EXPECT_TRUE(turns.may_try("a")) << "nobody waits";
  turns.refused("a", std::chrono::seconds(1));
  EXPECT_FALSE(turns.may_try("b"));
  clock.advance(std::chrono::milliseconds(2500));
  EXPECT_EQ(turns.waiting(), 2u) << "within the wait asked for and a while after it, nobody is forgotten";
  EXPECT_EQ(turns.waiting(), 2u);
  EXPECT_TRUE(turns.may_try("a"));
  turns.served("a");
  EXPECT_FALSE(turns.may_try("a")) << "served, a goes to the back of the line";
  EXPECT_TRUE(turns.may_try("b"));
  clock.advance(TenantTurns::kForgetAfter + std::chrono::milliseconds(1));
  EXPECT_TRUE(turns.may_try("c")) << "a and b did not come back: forgotten";
  EXPECT_EQ(turns.waiting(), 0u);
}

TEST(Scheduling, DuringAPrimaryOutageCallsGoToTheFallbackAndComeBackWhenItRecovers) {
  Fixture f;
  WorkerConfig config;
  config.breaker.minimum_calls = 2;
  config.breaker.window_size = 2;
  config.breaker.failure_rate_threshold = 50;
  config.breaker.open_wait = std::chrono::seconds(30);
  config.breaker.half_open_max_probes = 1;
  config.breaker.half_open_successes_to_close = 1;
  config.batch_max_files = 1;
  std::atomic<bool> primary_down{true}, never{false};
  std::atomic<int> primary_calls{0}, backup_calls{0};
  DevFixWorker worker(f.catalog, std::make_unique<ScriptedBackend>(never, "primary", &primary_down, &primary_calls),
                      config, f.registry, f.clock);
  worker.add_fallback(std::make_unique<ScriptedBackend>(never, "backup", nullptr, &backup_calls), {});
  Collect out;
  auto model_of_last = [&] { return nlohmann::json::parse(out.records.back().value)["payload"]["model"]; };

  EXPECT_FALSE(worker.handle(task_record("t1"), out)) << "served, not failed: the fallback answered";
  EXPECT_EQ(model_of_last(), "backup") << "the event says which model wrote the file";
  EXPECT_FALSE(worker.handle(task_record("t2"), out));
  EXPECT_EQ(primary_calls.load(), 2);
  EXPECT_EQ(worker.stats()["backends"][0]["breaker"]["state"], "open") << "two failures of two";
  for (int i = 3; i <= 6; ++i) EXPECT_FALSE(worker.handle(task_record("t" + std::to_string(i)), out));
  EXPECT_EQ(primary_calls.load(), 2) << "an open breaker: the primary is not even asked";
  EXPECT_EQ(backup_calls.load(), 6);
  EXPECT_EQ(model_of_last(), "backup");

  primary_down = false;
  f.clock.advance(std::chrono::seconds(31));  // the open wait has passed: a probe may go
  EXPECT_FALSE(worker.handle(task_record("t7"), out));
  EXPECT_EQ(model_of_last(), "primary") << "the probe succeeded and closed the breaker";
  EXPECT_FALSE(worker.handle(task_record("t8"), out));
  EXPECT_EQ(model_of_last(), "primary");
  EXPECT_EQ(backup_calls.load(), 6);
  EXPECT_EQ(worker.stats()["backends"][1]["model"], "backup");
}

}  // namespace
}  // namespace agentline::devfix
