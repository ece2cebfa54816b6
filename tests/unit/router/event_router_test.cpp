#include "event_router.h"

#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <algorithm>
#include <functional>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

namespace agentline::router {
namespace {

using nlohmann::json;

struct Collect : kafka::Emitter {
  std::vector<kafka::OutgoingRecord> records;
  void emit(kafka::OutgoingRecord r) override { records.push_back(std::move(r)); }
  std::vector<kafka::OutgoingRecord> to(const std::string& topic) const {
    std::vector<kafka::OutgoingRecord> out;
    for (const auto& r : records) {
      if (r.topic == topic) out.push_back(r);
    }
    return out;
  }
};

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : catalog_(kafka::TopicCatalog::load("")), router_(catalog_, RoutingTable::load("", catalog_), registry_, 1000) {}

  kafka::InboundRecord event(const std::string& id, const std::string& type, json payload,
                             const std::string& task = "t1") {
    kafka::InboundRecord r;
    r.topic = catalog_.topic("events");
    r.value = json{{"id", id},
                   {"task_id", task},
                   {"job_id", "job-1"},
                   {"type", type},
                   {"created_at", "2026-11-22T10:00:00Z"},
                   {"payload", payload}}
                  .dump();
    return r;
  }
  kafka::InboundRecord task(const std::string& task_id, const std::string& path) {
    kafka::InboundRecord r;
    r.topic = catalog_.topic("tasks.submitted");
    r.value = json{{"id", "m-" + task_id},
                   {"task_id", task_id},
                   {"job_id", "job-1"},
                   {"type", "DEV_TASK"},
                   {"created_at", "2026-11-22T10:00:00Z"},
                   {"payload", {{"path", path}, {"description", "write it"}}}}
                  .dump();
    return r;
  }
  // The job as a reader of jobs.progress sees it: every record so far, folded.
  json last_progress(const Collect& out) {
    std::vector<json> records;
    for (const auto& r : out.to(catalog_.topic("jobs.progress"))) records.push_back(json::parse(r.value));
    auto jobs = JobProgress::fold(records);
    return jobs.empty() ? json() : jobs.begin()->second;
  }

  prometheus::Registry registry_;
  kafka::TopicCatalog catalog_;
  EventRouter router_;
};

TEST_F(RouterTest, RoutingTableDefaults) {
  Collect out;
  EXPECT_FALSE(router_.handle(event("e1", "FILE_COMPLETED", {{"path", "a.py"}, {"content", "x = 1\n"}}), out));
  ASSERT_EQ(out.to(catalog_.topic("qa.requests")).size(), 1u);
  EXPECT_EQ(out.to(catalog_.topic("qa.requests"))[0].key, "t1");
  EXPECT_FALSE(router_.handle(event("e2", "QA_PASSED", {{"path", "a.py"}, {"content", "x = 1\n"}}), out));
  ASSERT_EQ(out.to(catalog_.topic("deploy.requests")).size(), 1u);
  EXPECT_EQ(out.to(catalog_.topic("deploy.requests"))[0].key, "job-1") << "deploy.requests is keyed by job";
  auto failed = router_.handle(
      event("e3", "FILE_FAILED", {{"path", "b.py"}, {"error_class", "llm_4xx"}, {"error", "400"}}, "t2"), out);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->kind, kafka::FailureKind::kBadInput);
  EXPECT_EQ(failed->error_class, "file_failed");
  auto unknown = router_.handle(event("e4", "TELEPORTED", {{"path", "c.py"}}), out);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->error_class, "unknown_event_type");
}

TEST_F(RouterTest, QaFailuresBecomeFixTasksUntilTheLimitThenTheDlq) {
  Collect out;
  const json diag = json::array({{{"line", 3}, {"message", "SyntaxError: invalid syntax"}, {"severity", "error"}}});
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto f = router_.handle(event("qa" + std::to_string(attempt), "QA_FAILED",
                                  {{"path", "a.py"},
                                   {"diagnostics", diag},
                                   {"fix_attempt", attempt},
                                   {"content", "def x(:\n"},
                                   {"description", "write a"},
                                   {"tenant", "acme"}}),
                            out);
    EXPECT_FALSE(f) << attempt;
  }
  auto fixes = out.to(catalog_.topic("tasks.fix"));
  ASSERT_EQ(fixes.size(), 3u);
  const json fix = json::parse(fixes[2].value);
  EXPECT_EQ(fix["type"], "FIX_TASK");
  EXPECT_EQ(fix["payload"]["fix_attempt"], 3);
  EXPECT_EQ(fix["payload"]["previous_content"], "def x(:\n");
  EXPECT_EQ(fix["payload"]["diagnostics"][0]["line"], 3);
  EXPECT_EQ(fix["payload"]["tenant"], "acme");
  auto limit =
      router_.handle(event("qa3", "QA_FAILED", {{"path", "a.py"}, {"diagnostics", diag}, {"fix_attempt", 3}}), out);
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->error_class, "qa_failed_max");
  EXPECT_NE(limit->message.find("line 3: SyntaxError"), std::string::npos) << limit->message;
  EXPECT_EQ(out.to(catalog_.topic("tasks.fix")).size(), 3u);
  const json p = last_progress(out);
  EXPECT_EQ(p["files"]["a.py"]["status"], "dead_lettered");
  EXPECT_EQ(p["counts"]["fixes"], 3) << "the fix attempt's number";
  EXPECT_EQ(p["counts"]["qa_failed"], 1) << "files that failed QA, not QA_FAILED events";
  EXPECT_EQ(p["counts"]["dead_lettered"], 1);
}

TEST_F(RouterTest, AFileDeadLetteredByAnotherServiceEndsOnItsJob) {
  Collect out;
  router_.handle(task("t1", "a.py"), out);
  router_.handle(task("t2", "b.py"), out);
  router_.handle(event("g1", "FILE_COMPLETED", {{"path", "a.py"}, {"content", "x = 1\n"}}, "t1"), out);
  // qa-worker refused a.py's QA request as bad input: its DLQ record is the request itself.
  kafka::InboundRecord dead;
  dead.topic = catalog_.topic("dlq");
  dead.value = event("g1", "FILE_COMPLETED", {{"path", "a.py"}, {"content", "x = 1\n"}}, "t1").value;
  dead.headers = {{"agentline-error-class", "unwritable_path"}, {"agentline-error-message", "File name too long"}};
  EXPECT_FALSE(router_.handle(dead, out)) << "a DLQ record is never dead-lettered again";
  json p = last_progress(out);
  EXPECT_EQ(p["files"]["a.py"]["status"], "dead_lettered");
  EXPECT_EQ(p["files"]["a.py"]["reason"], "unwritable_path: File name too long");
  EXPECT_EQ(p["counts"]["dead_lettered"], 1);
  EXPECT_EQ(p["files_done"], 1);
  // Read again (a redelivery): nothing changes, nothing counts twice.
  const auto before = out.to(catalog_.topic("jobs.progress")).size();
  router_.handle(dead, out);
  EXPECT_EQ(out.to(catalog_.topic("jobs.progress")).size(), before);
  // A record no job can own, and one that is not JSON: counted, never failed.
  kafka::InboundRecord junk;
  junk.topic = catalog_.topic("dlq");
  for (const std::string& v :
       {std::string("\xff{not json"), json{{"job_id", ".."}, {"payload", {{"path", "x"}}}}.dump(),
        json{{"job_id", "a/b"}, {"payload", {{"path", "x"}}}}.dump(), std::string("[]")}) {
    junk.value = v;
    EXPECT_FALSE(router_.handle(junk, out)) << v;
  }
  EXPECT_EQ(last_progress(out)["files_total"], 2);
}

TEST_F(RouterTest, ASecondTaskRefusedForAPathTakenIsListedOnTheJobNotOverThePath) {
  Collect out;
  router_.handle(task("t1", "a.py"), out);
  router_.handle(event("u1", "UPLOADED", {{"path", "a.py"}, {"target", "filesystem"}, {"remote_id", "out/a.py"}}, "t1"),
                 out);
  kafka::InboundRecord dead;
  dead.topic = catalog_.topic("dlq");
  dead.value = event("p2", "QA_PASSED", {{"path", "a.py"}, {"content", "y = 2\n"}}, "t2").value;
  dead.headers = {{"agentline-error-class", "duplicate_path"},
                  {"agentline-error-message", "job job-1 already has a.py from task t1"}};
  EXPECT_FALSE(router_.handle(dead, out));
  const json p = last_progress(out);
  EXPECT_EQ(p["files"]["a.py"]["status"], "delivered") << "the path keeps its task's state";
  EXPECT_EQ(p["refused"]["t2"]["path"], "a.py");
  EXPECT_EQ(p["refused"]["t2"]["reason"], "duplicate_path: job job-1 already has a.py from task t1");
}

TEST_F(RouterTest, CountersAreTheFilesStatesWhateverTheEventsDeliveryOrder) {
  // A 6-file job's records as a router meets them: each task's events in order (one partition
  // of events, keyed by task), tasks and submissions (another topic) interleaved at random, and
  // three crashes, each reading again from an earlier offset. The counters never pass the file
  // count, and the final states are those of an orderly run.
  std::vector<std::vector<kafka::InboundRecord>> lanes;
  for (int i = 0; i < 6; ++i) {
    const std::string t = "t" + std::to_string(i), path = "f" + std::to_string(i) + ".py";
    lanes.push_back({task(t, path)});
    std::vector<kafka::InboundRecord> lane{event("g" + t, "FILE_COMPLETED", {{"path", path}, {"content", "x"}}, t)};
    if (i % 3 == 0) {
      lane.push_back(event("q" + t, "QA_FAILED",
                           {{"path", path}, {"fix_attempt", 0}, {"content", "x"}, {"diagnostics", json::array()}}, t));
      lane.push_back(event("g2" + t, "FILE_COMPLETED", {{"path", path}, {"content", "x"}, {"fix_attempt", 1}}, t));
      lane.push_back(event("p" + t, "QA_PASSED", {{"path", path}, {"fix_attempt", 1}}, t));
    } else {
      lane.push_back(event("p" + t, "QA_PASSED", {{"path", path}}, t));
    }
    lane.push_back(
        event("u" + t, "UPLOADED", {{"path", path}, {"target", "filesystem"}, {"remote_id", "out/" + path}}, t));
    lanes.push_back(std::move(lane));
  }
  std::mt19937 rng(20);
  for (int round = 0; round < 50; ++round) {
    std::vector<kafka::InboundRecord> stream;
    std::vector<std::size_t> next(lanes.size(), 0);
    std::size_t total = 0;
    for (const auto& lane : lanes) total += lane.size();
    while (stream.size() < total) {
      std::size_t l = rng() % lanes.size();
      while (next[l] == lanes[l].size()) l = (l + 1) % lanes.size();
      stream.push_back(lanes[l][next[l]++]);
    }
    std::vector<kafka::InboundRecord> delivered;
    std::size_t at = 0;
    for (int crash = 0; crash < 3; ++crash) {
      const std::size_t until = at + rng() % (stream.size() - at + 1);
      delivered.insert(delivered.end(), stream.begin() + at, stream.begin() + until);
      at = until == 0 ? 0 : rng() % until;  // restarts from the last committed offset
    }
    delivered.insert(delivered.end(), stream.begin() + at, stream.end());
    prometheus::Registry registry;
    EventRouter router(catalog_, RoutingTable::load("", catalog_), registry, 1);  // ids forgotten at once
    Collect out;
    for (const auto& r : delivered) {
      router.handle(r, out);
      const auto doc = *router.progress().get("job-1");
      for (const auto& [name, n] : doc["counts"].items()) {
        if (name != "fixes") {
          ASSERT_LE(n.get<int>(), doc["files_total"].get<int>()) << name << " in round " << round;
        }
      }
    }
    const auto doc = last_progress(out);
    EXPECT_EQ(doc["files_total"], 6) << round;
    EXPECT_EQ(doc["counts"]["delivered"], 6) << round;
    EXPECT_EQ(doc["counts"]["qa_passed"], 6) << round;
    EXPECT_EQ(doc["counts"]["generated"], 6) << round;
    EXPECT_EQ(doc["counts"]["qa_failed"], 2) << round;
    EXPECT_EQ(doc["counts"]["fixes"], 2) << round;
    EXPECT_EQ(doc["percent"], 100) << round;
  }
}

TEST_F(RouterTest, RedeliveredEventsAreDropped) {
  Collect out;
  auto e = event("same-id", "FILE_COMPLETED", {{"path", "a.py"}, {"content", ""}});
  router_.handle(e, out);
  router_.handle(e, out);
  EXPECT_EQ(out.to(catalog_.topic("qa.requests")).size(), 1u);
}

TEST_F(RouterTest, ProgressFollowsTheJob) {
  Collect out;
  router_.handle(task("t1", "a.py"), out);
  router_.handle(task("t2", "b.py"), out);
  router_.handle(task("t2", "b.py"), out);  // redelivered
  EXPECT_EQ(last_progress(out)["counts"]["submitted"], 2);
  EXPECT_EQ(last_progress(out)["percent"], 0);
  router_.handle(event("g1", "FILE_COMPLETED", {{"path", "a.py"}, {"content", ""}}, "t1"), out);
  router_.handle(event("q1", "QA_PASSED", {{"path", "a.py"}}, "t1"), out);
  json p = last_progress(out);
  EXPECT_EQ(p["percent"], 50);
  EXPECT_EQ(p["files"]["a.py"]["status"], "qa_passed");
  EXPECT_EQ(p["files"]["b.py"]["status"], "submitted");
  EXPECT_FALSE(router_.handle(
      event("u1", "UPLOADED", {{"path", "a.py"}, {"target", "filesystem"}, {"remote_id", "out/a.py"}}, "t1"), out));
  router_.handle(event("f2", "FILE_FAILED", {{"path", "b.py"}, {"error_class", "timeout"}, {"error", "slow"}}, "t2"),
                 out);
  p = last_progress(out);
  EXPECT_EQ(p["percent"], 100);
  EXPECT_EQ(p["counts"]["delivered"], 1);
  EXPECT_EQ(p["files"]["b.py"]["reason"], "timeout: slow");
  const auto progress = out.to(catalog_.topic("jobs.progress"));
  EXPECT_EQ(progress[progress.size() - 2].key, "job-1") << "the summary is keyed by job";
  EXPECT_EQ(progress.back().key, "job-1/b.py") << "a file's record by job and path";
  EXPECT_FALSE(json::parse(progress[progress.size() - 2].value).contains("files")) << "the summary stays small";
}

TEST_F(RouterTest, EveryCallIsChargedToItsFileAndJobOnceAndTheBudgetSaysWhenItIsSpent) {
  Collect out;
  auto submitted = task("t1", "a.py");
  auto doc = json::parse(submitted.value);
  doc["payload"]["budget"] = {{"tokens", 250}, {"cost_usd", 1.0}};
  doc["payload"]["tenant"] = "acme";
  submitted.value = doc.dump();
  router_.handle(submitted, out);
  router_.handle(task("t2", "b.py"), out);
  json p = last_progress(out);
  EXPECT_EQ(p["budget"]["tokens"], 250) << "the first task that carries a budget sets the job's";
  EXPECT_EQ(p["tenant"], "acme") << "dev-fix-worker charges the tenant's budgets with the job's usage";
  EXPECT_EQ(p["budget"]["exhausted"], false);

  auto generated = event(
      "g1", "FILE_COMPLETED",
      {{"path", "a.py"}, {"content", ""}, {"prompt_tokens", 60}, {"completion_tokens", 40}, {"cost_usd", 0.01}}, "t1");
  router_.handle(generated, out);
  // The same event again (a new id: past the dedupe window, as after a restart) charges nothing.
  auto again = event(
      "g1-redelivered", "FILE_COMPLETED",
      {{"path", "a.py"}, {"content", ""}, {"prompt_tokens", 60}, {"completion_tokens", 40}, {"cost_usd", 0.01}}, "t1");
  router_.handle(again, out);
  // QA events carry the file's fields too: not a call of their own.
  router_.handle(event("q1", "QA_FAILED",
                       {{"path", "a.py"},
                        {"content", ""},
                        {"prompt_tokens", 60},
                        {"completion_tokens", 40},
                        {"diagnostics", json::array({{{"message", "x"}, {"check", "syntax"}}})}},
                       "t1"),
                 out);
  p = last_progress(out);
  EXPECT_EQ(p["files"]["a.py"]["usage"]["tokens"], 100);
  EXPECT_EQ(p["usage"]["tokens"], 100);
  EXPECT_EQ(p["budget"]["exhausted"], false);

  // The fix's generation and a replan's call add up; the plan's is charged once by event id.
  router_.handle(event("g2", "FILE_COMPLETED",
                       {{"path", "a.py"},
                        {"content", ""},
                        {"fix_attempt", 1},
                        {"prompt_tokens", 100},
                        {"completion_tokens", 20},
                        {"cost_usd", 0.02}},
                       "t1"),
                 out);
  p = last_progress(out);
  EXPECT_EQ(p["files"]["a.py"]["usage"]["tokens"], 220);
  EXPECT_NEAR(p["usage"]["cost_usd"].get<double>(), 0.03, 1e-9);
  EXPECT_EQ(p["budget"]["exhausted"], false) << "220 of 250 tokens";
  router_.handle(event("g3", "FILE_COMPLETED",
                       {{"path", "b.py"}, {"content", ""}, {"prompt_tokens", 20}, {"completion_tokens", 10}}, "t2"),
                 out);
  p = last_progress(out);
  EXPECT_EQ(p["usage"]["tokens"], 250);
  EXPECT_EQ(p["files"]["b.py"]["usage"]["tokens"], 30);
  EXPECT_EQ(p["budget"]["exhausted"], true) << "250 of 250 tokens: spent";

  // Raised (agentline budget): the job may go on.
  router_.handle(event("budget-1", "JOB_BUDGET_SET", {{"budget", {{"tokens", 10000}}}}, "budget-1"), out);
  p = last_progress(out);
  EXPECT_EQ(p["budget"]["tokens"], 10000);
  EXPECT_FALSE(p["budget"].contains("cost_usd")) << "the new budget replaces the old";
  EXPECT_EQ(p["budget"]["exhausted"], false);
}

json plan_event_payload() {
  return {
      {"goal", "a calculator"},
      {"plan_attempt", 0},
      {"plan",
       {{"files",
         {{{"path", "calc/core.py"}, {"description", "core"}, {"language", "python"}, {"depends_on", json::array()}},
          {{"path", "calc/cli.py"},
           {"description", "cli"},
           {"language", "python"},
           {"depends_on", {"calc/core.py"}},
           {"parent", "s1"}}}},
        {"interface", "core_info()"},
        {"items", {{{"id", "s1"}, {"kind", "story"}, {"title", "The CLI"}}}}}}};
}

TEST_F(RouterTest, AnAcceptedPlanIsShownAndItsFilesAreReleasedInDependencyOrder) {
  Collect out;
  EXPECT_FALSE(router_.handle(event("pc-1", "PLAN_COMPLETED", plan_event_payload(), "job-1:plan"), out));
  auto released = out.to(catalog_.topic("tasks.submitted"));
  ASSERT_EQ(released.size(), 1u) << "only the file that depends on nothing";
  auto core = json::parse(released[0].value);
  EXPECT_EQ(core["payload"]["path"], "calc/core.py");
  EXPECT_EQ(core["payload"]["dependants"], 1);
  EXPECT_EQ(released[0].key, core["task_id"]);
  ASSERT_EQ(out.to(catalog_.topic("deploy.requests")).size(), 1u) << "the plan's story, for the delivery target";
  EXPECT_EQ(json::parse(out.to(catalog_.topic("deploy.requests"))[0].value)["type"], "DEPLOY_ITEM");
  EXPECT_FALSE(out.to(catalog_.topic("jobs.plans")).empty());
  auto job = last_progress(out);
  EXPECT_EQ(job["plan"]["status"], "accepted");
  EXPECT_EQ(job["files_total"], 2);
  EXPECT_EQ(job["files"]["calc/core.py"]["status"], "released");
  EXPECT_EQ(job["files"]["calc/cli.py"]["status"], "waiting");
  EXPECT_EQ(job["files"]["calc/cli.py"]["depends_on"], json::array({"calc/core.py"}));

  // core passes QA: cli is released with core's content and its parent item.
  Collect next;
  EXPECT_FALSE(router_.handle(
      event("qp-1", "QA_PASSED", {{"path", "calc/core.py"}, {"content", "def core_info(): ..."}}, core["task_id"]),
      next));
  released = next.to(catalog_.topic("tasks.submitted"));
  ASSERT_EQ(released.size(), 1u);
  auto cli = json::parse(released[0].value);
  EXPECT_EQ(cli["payload"]["path"], "calc/cli.py");
  EXPECT_EQ(cli["payload"]["parent_id"], "s1");
  EXPECT_EQ(cli["payload"]["context_files"][0]["content"], "def core_info(): ...");
  EXPECT_EQ(router_.gate().context_for("job-1", "calc/cli.py", false)["job"]["interface"], "core_info()");

  // A redelivered plan or QA_PASSED (new ids, as after a replay with another router) releases nothing.
  Collect again;
  EXPECT_FALSE(router_.handle(event("pc-1b", "PLAN_COMPLETED", plan_event_payload(), "job-1:plan"), again));
  EXPECT_FALSE(router_.handle(
      event("qp-1b", "QA_PASSED", {{"path", "calc/core.py"}, {"content", "def core_info(): ..."}}, core["task_id"]),
      again));
  EXPECT_TRUE(again.to(catalog_.topic("tasks.submitted")).empty());
}

TEST_F(RouterTest, ARejectedPlanIsAskedForAgainWithItsErrorsThenDeadLettered) {
  json rejected = {{"goal", "a calculator"},
                   {"plan_attempt", 0},
                   {"reply", "no plan here"},
                   {"constraints", {{"max_files", 3}}},
                   {"diagnostics", {{{"message", "the reply holds no JSON plan"}, {"check", "plan"}}}}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    rejected["plan_attempt"] = attempt;
    Collect out;
    EXPECT_FALSE(router_.handle(event("pr-" + std::to_string(attempt), "PLAN_REJECTED", rejected, "job-1:plan"), out));
    auto fixes = out.to(catalog_.topic("tasks.fix"));
    ASSERT_EQ(fixes.size(), 1u);
    auto again = json::parse(fixes[0].value);
    EXPECT_EQ(again["type"], "PLAN_TASK");
    EXPECT_EQ(again["payload"]["plan_attempt"], attempt + 1);
    EXPECT_EQ(again["payload"]["previous_reply"], "no plan here");
    EXPECT_EQ(again["payload"]["constraints"]["max_files"], 3);
    EXPECT_EQ(last_progress(out)["plan"]["status"], "fixing");
  }
  rejected["plan_attempt"] = 2;
  Collect out;
  auto failure = router_.handle(event("pr-2", "PLAN_REJECTED", rejected, "job-1:plan"), out);
  ASSERT_TRUE(failure) << "plan_fix_limit 2: the third rejection is dead-lettered";
  EXPECT_EQ(failure->error_class, "plan_invalid");
  EXPECT_NE(failure->message.find("the reply holds no JSON plan"), std::string::npos);
  EXPECT_EQ(last_progress(out)["plan"]["status"], "dead_lettered");
}

TEST_F(RouterTest, ARejectedSuppliedPlanIsDeadLetteredAtOnce) {
  Collect out;
  auto failure = router_.handle(event("pr-s", "PLAN_REJECTED",
                                      {{"goal", "g"},
                                       {"plan_attempt", 0},
                                       {"supplied", true},
                                       {"diagnostics", {{{"message", "dependency cycle: a -> b -> a"}}}}},
                                      "job-1:plan"),
                                out);
  ASSERT_TRUE(failure) << "the same plan would fail the same way: no plan-fix attempt";
  EXPECT_EQ(failure->error_class, "plan_invalid");
  EXPECT_TRUE(out.to(catalog_.topic("tasks.fix")).empty());
}

TEST_F(RouterTest, APlannedFileAtTheFixLimitGoesBackToThePlannerOnceThenToTheDlq) {
  Collect plan;
  router_.handle(event("pc-1", "PLAN_COMPLETED", plan_event_payload(), "job-1:plan"), plan);
  const json failed = {{"path", "calc/core.py"},
                       {"fix_attempt", 3},
                       {"description", "core"},
                       {"content", "def core(:"},
                       {"diagnostics", {{{"line", 1}, {"message", "SyntaxError"}}}}};
  Collect out;
  EXPECT_FALSE(router_.handle(event("qf-3", "QA_FAILED", failed, "job-1:0"), out)) << "not the DLQ yet";
  auto replans = out.to(catalog_.topic("tasks.fix"));
  ASSERT_EQ(replans.size(), 1u);
  auto replan = json::parse(replans[0].value);
  EXPECT_EQ(replan["type"], "REPLAN_TASK");
  EXPECT_EQ(replan["payload"]["content"], "def core(:");
  EXPECT_EQ(replan["payload"]["plan"]["files"].size(), 2u);
  ASSERT_EQ(out.to(catalog_.topic("escalations")).size(), 1u) << "the escalations topic records the replan";
  EXPECT_EQ(last_progress(out)["files"]["calc/core.py"]["status"], "replanning");

  // The planner revises it: the file is released again under a new task id.
  json revised = {
      {"goal", "a calculator"},
      {"replan_of", "calc/core.py"},
      {"plan",
       {{"files", {{{"path", "calc/core.py"}, {"description", "smaller core"}, {"depends_on", json::array()}}}}}}};
  Collect again;
  EXPECT_FALSE(router_.handle(event("pc-r", "PLAN_COMPLETED", revised, "job-1:0"), again));
  auto released = again.to(catalog_.topic("tasks.submitted"));
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(json::parse(released[0].value)["task_id"], "job-1:0r1");
  EXPECT_EQ(json::parse(released[0].value)["payload"]["description"], "smaller core");

  // A second failure at the limit is dead-lettered, and cli is released with that fact.
  Collect last;
  auto dead = router_.handle(event("qf-r3", "QA_FAILED", failed, "job-1:0r1"), last);
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->error_class, "qa_failed_max");
  released = last.to(catalog_.topic("tasks.submitted"));
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(json::parse(released[0].value)["payload"]["dependency_failures"][0]["path"], "calc/core.py");
}

// Both planned files pass their own checks; returns the JOB_CHECK_REQUESTED that follows.
json pass_both(
    EventRouter& router, const kafka::TopicCatalog& catalog,
    const std::function<kafka::InboundRecord(const std::string&, const std::string&, json, const std::string&)>& event,
    Collect& out) {
  router.handle(event("pc-1", "PLAN_COMPLETED", plan_event_payload(), "job-1:plan"), out);
  router.handle(
      event("qp-core", "QA_PASSED",
            {{"path", "calc/core.py"}, {"content", "def core_info(): ..."}, {"description", "core"}}, "job-1:0"),
      out);
  router.handle(event("qp-cli", "QA_PASSED",
                      {{"path", "calc/cli.py"},
                       {"content", "from calc.core import core_missing"},
                       {"description", "cli"},
                       {"tenant", "acme"},
                       {"warnings",
                        {{{"file", "calc/cli.py"}, {"severity", "warning"}, {"message", "'os' imported but unused"}}}}},
                      "job-1:1"),
                out);
  const auto checks = out.to(catalog.topic("qa.requests"));
  return checks.empty() ? json() : json::parse(checks.back().value);
}

json job_failed(int attempt, const std::string& file) {
  return {{"job_check_attempt", attempt},
          {"checks", {{{"name", "python_imports_and_tests"}, {"outcome", "failed"}}}},
          {"diagnostics",
           {{{"file", file},
             {"line", 1},
             {"severity", "error"},
             {"check", "imports"},
             {"message", "ImportError: cannot import name 'core_missing' from 'calc.core'"},
             {"related", {"calc/core.py"}}}}}};
}

TEST_F(RouterTest, APlannedJobIsCheckedAsAWholeFixedWhereTheCheckPointsAndDeliveredOnlyOnceItPasses) {
  using namespace std::placeholders;
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  const json request = pass_both(router_, catalog_, ev, out);
  ASSERT_EQ(request.value("type", ""), "JOB_CHECK_REQUESTED") << "both files passed: the job is checked";
  EXPECT_EQ(request["payload"]["job_check_attempt"], 0);
  ASSERT_EQ(request["payload"]["files"].size(), 2u);
  EXPECT_EQ(request["payload"]["files"][1]["content"], "from calc.core import core_missing");
  for (const auto& r : out.to(catalog_.topic("deploy.requests")))
    EXPECT_NE(json::parse(r.value)["type"], "QA_PASSED") << "no file is delivered before the job check";
  EXPECT_EQ(last_progress(out)["job_check"]["state"], "running");

  // It fails, naming cli: cli gets a fix with the diagnostics, its warnings and core's content.
  Collect fail;
  EXPECT_FALSE(router_.handle(event("jqf-0", "JOB_QA_FAILED", job_failed(0, "calc/cli.py"), "job-1:job-check"), fail));
  auto fixes = fail.to(catalog_.topic("tasks.fix"));
  ASSERT_EQ(fixes.size(), 1u);
  auto fix = json::parse(fixes[0].value);
  EXPECT_EQ(fix["type"], "FIX_TASK");
  EXPECT_EQ(fix["task_id"], "job-1:1");
  EXPECT_EQ(fix["payload"]["path"], "calc/cli.py");
  EXPECT_EQ(fix["payload"]["fix_attempt"], 1);
  EXPECT_EQ(fix["payload"]["tenant"], "acme");
  EXPECT_EQ(fix["payload"]["previous_content"], "from calc.core import core_missing");
  ASSERT_EQ(fix["payload"]["diagnostics"].size(), 2u) << "the job check's error and the file's own warning";
  EXPECT_EQ(fix["payload"]["diagnostics"][0]["check"], "imports");
  EXPECT_EQ(fix["payload"]["diagnostics"][1]["severity"], "warning");
  bool has_core = false;
  for (const auto& c : fix["payload"]["context_files"]) has_core = has_core || c["path"] == "calc/core.py";
  EXPECT_TRUE(has_core) << fix["payload"].dump();
  auto job = last_progress(fail);
  EXPECT_EQ(job["job_check"]["state"], "fixing");
  EXPECT_EQ(job["job_check"]["attempt"], 1);
  EXPECT_EQ(job["files"]["calc/cli.py"]["status"], "fixing");
  EXPECT_NE(job["files"]["calc/cli.py"]["reason"].get<std::string>().find("job check: line 1"), std::string::npos);

  Collect again;
  EXPECT_FALSE(
      router_.handle(event("jqf-0b", "JOB_QA_FAILED", job_failed(0, "calc/cli.py"), "job-1:job-check"), again));
  EXPECT_TRUE(again.to(catalog_.topic("tasks.fix")).empty()) << "a redelivered result sends no second fix";

  // The fixed cli passes its own checks: the job is checked again, passes, and both files go out.
  Collect fixed;
  router_.handle(
      event("qp-cli-1", "QA_PASSED",
            {{"path", "calc/cli.py"}, {"content", "from calc.core import core_info"}, {"fix_attempt", 1}}, "job-1:1"),
      fixed);
  auto rechecks = fixed.to(catalog_.topic("qa.requests"));
  ASSERT_EQ(rechecks.size(), 1u);
  EXPECT_EQ(json::parse(rechecks[0].value)["payload"]["job_check_attempt"], 1);
  Collect passed;
  EXPECT_FALSE(router_.handle(
      event("jqp-1", "JOB_QA_PASSED",
            {{"job_check_attempt", 1}, {"checks", json::array()}, {"diagnostics", json::array()}}, "job-1:job-check"),
      passed));
  std::map<std::string, std::string> delivered;
  for (const auto& r : passed.to(catalog_.topic("deploy.requests"))) {
    auto e = json::parse(r.value);
    delivered[e["payload"]["path"]] = e["payload"]["content"];
    EXPECT_EQ(e["type"], "QA_PASSED");
  }
  EXPECT_EQ(delivered, (std::map<std::string, std::string>{{"calc/core.py", "def core_info(): ..."},
                                                           {"calc/cli.py", "from calc.core import core_info"}}));
  EXPECT_EQ(last_progress(passed)["job_check"]["state"], "passed");
}

TEST_F(RouterTest, AJobCheckThatStillFailsAfterItsRoundsDeadLettersTheNamedFilesAndDeliversTheRest) {
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  pass_both(router_, catalog_, ev, out);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Collect round;
    router_.handle(
        event("jqf-" + std::to_string(attempt), "JOB_QA_FAILED", job_failed(attempt, "calc/cli.py"), "job-1:job-check"),
        round);
    ASSERT_EQ(round.to(catalog_.topic("tasks.fix")).size(), 1u) << attempt;
    router_.handle(
        event("qp-cli-" + std::to_string(attempt + 1), "QA_PASSED",
              {{"path", "calc/cli.py"}, {"content", "still broken"}, {"fix_attempt", attempt + 1}}, "job-1:1"),
        round);
    ASSERT_EQ(round.to(catalog_.topic("qa.requests")).size(), 1u) << attempt;
  }
  Collect last;
  EXPECT_FALSE(router_.handle(event("jqf-2", "JOB_QA_FAILED", job_failed(2, "calc/cli.py"), "job-1:job-check"), last));
  EXPECT_TRUE(last.to(catalog_.topic("tasks.fix")).empty()) << "job_fix_limit 2";
  auto dlq = last.to(catalog_.dlq_topic());
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(kafka::find_header(dlq[0].headers, kafka::headers::kErrorClass), "job_qa_failed");
  auto value = json::parse(dlq[0].value);
  EXPECT_EQ(value["payload"]["path"], "calc/cli.py");
  EXPECT_EQ(value["payload"]["content"], "still broken");
  EXPECT_EQ(value["payload"]["diagnostics"][0]["check"], "imports");
  auto deploys = last.to(catalog_.topic("deploy.requests"));
  ASSERT_EQ(deploys.size(), 1u);
  EXPECT_EQ(json::parse(deploys[0].value)["payload"]["path"], "calc/core.py");
  auto job = last_progress(last);
  EXPECT_EQ(job["job_check"]["state"], "failed");
  EXPECT_EQ(job["files"]["calc/cli.py"]["status"], "dead_lettered");
  EXPECT_EQ(job["files"]["calc/cli.py"]["reason"].get<std::string>().rfind("job_qa_failed: line 1", 0), 0u);
}

TEST_F(RouterTest, AtTheLastRoundAFileWhoseImportFailedOnlyThroughANamedFileIsNotDeliveredEither) {
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  pass_both(router_, catalog_, ev, out);
  auto broken_core = [](int attempt) {
    json p = job_failed(attempt, "calc/core.py");
    p["diagnostics"][0]["message"] = "ModuleNotFoundError: No module named 'calc.absent'";
    p["diagnostics"][0]["via"] = {"calc/cli.py"};
    return p;
  };
  for (int attempt = 0; attempt < 2; ++attempt) {
    Collect round;
    router_.handle(event("jqf-" + std::to_string(attempt), "JOB_QA_FAILED", broken_core(attempt), "job-1:job-check"),
                   round);
    auto fixes = round.to(catalog_.topic("tasks.fix"));
    ASSERT_EQ(fixes.size(), 1u) << "the fix goes where the error is, not to the importer";
    EXPECT_EQ(json::parse(fixes[0].value)["payload"]["path"], "calc/core.py");
    router_.handle(
        event("qp-core-" + std::to_string(attempt + 1), "QA_PASSED",
              {{"path", "calc/core.py"}, {"content", "from calc.absent import x"}, {"fix_attempt", attempt + 1}},
              "job-1:0"),
        round);
  }
  Collect last;
  router_.handle(event("jqf-2", "JOB_QA_FAILED", broken_core(2), "job-1:job-check"), last);
  EXPECT_EQ(last.to(catalog_.dlq_topic()).size(), 2u);
  EXPECT_TRUE(last.to(catalog_.topic("deploy.requests")).empty()) << "cli would not import without core";
  auto job = last_progress(last);
  EXPECT_EQ(job["files"]["calc/cli.py"]["status"], "dead_lettered");
  EXPECT_NE(job["files"]["calc/cli.py"]["reason"].get<std::string>().find("it imports calc/core.py"),
            std::string::npos);
}

TEST_F(RouterTest, AJobCheckThatWasOutWhenTheRouterStoppedIsAskedForAgainAtStart) {
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  const json first = pass_both(router_, catalog_, ev, out);
  ASSERT_EQ(first.value("type", ""), "JOB_CHECK_REQUESTED");
  // A new replica reads jobs.plans back (the request itself may never have reached Kafka).
  prometheus::Registry registry;
  EventRouter restarted(catalog_, RoutingTable::load("", catalog_), registry, 1000);
  for (const auto& r : out.to(catalog_.topic("jobs.plans"))) restarted.gate().load(r.key, json::parse(r.value));
  Collect again;
  EXPECT_EQ(restarted.resend_job_checks(again), 1);
  auto resent = again.to(catalog_.topic("qa.requests"));
  ASSERT_EQ(resent.size(), 1u);
  auto request = json::parse(resent[0].value);
  EXPECT_EQ(request["id"], first["id"]) << "the same request: qa-worker's second answer is a duplicate";
  EXPECT_EQ(request["payload"]["files"], first["payload"]["files"]);
  // Its answer is taken once.
  Collect result;
  auto passed =
      event("jqp-0", "JOB_QA_PASSED", {{"job_check_attempt", 0}, {"checks", json::array()}}, "job-1:job-check");
  EXPECT_FALSE(restarted.handle(passed, result));
  EXPECT_EQ(result.to(catalog_.topic("deploy.requests")).size(), 2u);
  Collect twice;
  auto copy =
      event("jqp-0-copy", "JOB_QA_PASSED", {{"job_check_attempt", 0}, {"checks", json::array()}}, "job-1:job-check");
  EXPECT_FALSE(restarted.handle(copy, twice));
  EXPECT_TRUE(twice.to(catalog_.topic("deploy.requests")).empty());
}

TEST_F(RouterTest, AJobCheckThatNamesNoFileOfTheJobIsDeadLetteredAndItsFilesDelivered) {
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  pass_both(router_, catalog_, ev, out);
  Collect result;
  auto failure = router_.handle(event("jqf-0", "JOB_QA_FAILED", job_failed(0, ""), "job-1:job-check"), result);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->error_class, "job_qa_failed");
  EXPECT_EQ(result.to(catalog_.topic("deploy.requests")).size(), 2u);
  EXPECT_EQ(last_progress(result)["job_check"]["state"], "failed");
}

TEST_F(RouterTest, AFileTooLargeToHoldIsDeliveredAtOnceAndItsJobIsNotCheckedAsAWhole) {
  Collect out;
  router_.handle(event("pc-1", "PLAN_COMPLETED", plan_event_payload(), "job-1:plan"), out);
  const std::string big(DependencyGate::kHoldBytes + 1, 'x');
  Collect core;
  router_.handle(event("qp-core", "QA_PASSED", {{"path", "calc/core.py"}, {"content", big}}, "job-1:0"), core);
  int delivered = 0;
  for (const auto& r : core.to(catalog_.topic("deploy.requests")))
    delivered += json::parse(r.value)["type"] == "QA_PASSED";
  EXPECT_EQ(delivered, 1) << "not held: a job check could not carry it";
  Collect cli;
  router_.handle(event("qp-cli", "QA_PASSED", {{"path", "calc/cli.py"}, {"content", "import calc.core"}}, "job-1:1"),
                 cli);
  EXPECT_TRUE(cli.to(catalog_.topic("qa.requests")).empty());
  auto deploys = cli.to(catalog_.topic("deploy.requests"));
  ASSERT_EQ(deploys.size(), 1u) << "the held file goes out when the job check is skipped";
  EXPECT_EQ(json::parse(deploys[0].value)["payload"]["path"], "calc/cli.py");
  auto job = last_progress(cli);
  EXPECT_EQ(job["job_check"]["state"], "skipped");
  EXPECT_NE(job["job_check"]["reason"].get<std::string>().find("calc/core.py is larger"), std::string::npos);
}

TEST_F(RouterTest, WithReviewsAFilePassesOnlyThroughTheReviewersItsRulesChoose) {
  router_.set_reviews(ReviewRules::load(""));
  Collect out;
  EXPECT_FALSE(router_.handle(
      event("qp-auth", "QA_PASSED", {{"path", "app/auth.py"}, {"content", "def login(): ..."}, {"fix_attempt", 0}}),
      out));
  auto reviews = out.to(catalog_.topic("tasks.fix"));
  ASSERT_EQ(reviews.size(), 1u);
  auto review = json::parse(reviews[0].value);
  EXPECT_EQ(review["type"], "REVIEW_TASK");
  EXPECT_EQ(review["payload"]["reviewers"], json::array({"security"})) << "correctness has no test to go by";
  EXPECT_EQ(review["payload"]["content"], "def login(): ...");
  EXPECT_TRUE(out.to(catalog_.topic("deploy.requests")).empty()) << "not delivered before its review";
  // The reviewed pass (it carries "review") goes on like any QA_PASSED.
  Collect reviewed;
  EXPECT_FALSE(router_.handle(event("qp-auth-rv", "QA_PASSED",
                                    {{"path", "app/auth.py"},
                                     {"content", "def login(): ..."},
                                     {"review", {{"reviewers", {"security"}}, {"findings", 0}}}}),
                              reviewed));
  EXPECT_EQ(reviewed.to(catalog_.topic("deploy.requests")).size(), 1u);
  // A file no rule picks is not reviewed: both reviewers' calls are saved.
  Collect plain;
  router_.handle(event("qp-readme", "QA_PASSED", {{"path", "README.md"}, {"content", "# hi"}}, "t2"), plain);
  EXPECT_TRUE(plain.to(catalog_.topic("tasks.fix")).empty());
  EXPECT_EQ(plain.to(catalog_.topic("deploy.requests")).size(), 1u);
  double saved = 0;
  for (const auto& family : registry_.Collect()) {
    if (family.name == "agentline_router_review_calls_saved_total") saved = family.metric.at(0).counter.value;
  }
  EXPECT_EQ(saved, 3) << "one for auth.py (correctness), two for README.md";
}

TEST_F(RouterTest, DeliverBeforeJobChecksSendsFilesAsTheyPassAndStillChecksTheJob) {
  prometheus::Registry registry;
  JobCheckOptions options;
  options.deliver_before = true;
  EventRouter router(catalog_, RoutingTable::load("", catalog_), registry, 1000, options);
  auto ev = [this](const std::string& id, const std::string& type, json payload, const std::string& task) {
    return event(id, type, std::move(payload), task);
  };
  Collect out;
  const json request = pass_both(router, catalog_, ev, out);
  EXPECT_EQ(request.value("type", ""), "JOB_CHECK_REQUESTED");
  int files = 0;
  for (const auto& r : out.to(catalog_.topic("deploy.requests"))) files += json::parse(r.value)["type"] == "QA_PASSED";
  EXPECT_EQ(files, 2);
}

TEST(RoutingTable, BadTablesAreRefused) {
  auto catalog = kafka::TopicCatalog::load("");
  EXPECT_THROW(RoutingTable::parse(R"({"routes": {"FILE_COMPLETED": "nowhere"}})", catalog), std::invalid_argument);
  EXPECT_THROW(RoutingTable::parse(R"({"routes": {"FILE_COMPLETED": "qa.requests"}, "fix_limt": 2})", catalog),
               std::invalid_argument);
  EXPECT_THROW(RoutingTable::parse(R"({"routes": {"QA_PASSED": "tasks.fix"}})", catalog), std::invalid_argument);
  auto t = RoutingTable::parse(R"({"routes": {"QA_FAILED": "dlq"}, "fix_limit": 0})", catalog);
  EXPECT_EQ(t.route("QA_FAILED")->kind, Route::Kind::kDeadLetter);
  EXPECT_FALSE(t.route("FILE_COMPLETED")) << "absent types are unrouted";
}

TEST(JobProgressTest, EachStepPublishesSmallRecordsWhateverTheJobSize) {
  JobProgress progress;
  std::vector<json> published;
  constexpr int kFiles = 3000;
  // What a step publishes: the records it names, made from the state after it.
  auto step = [&](int i, JobProgress::Step s) {
    const std::string path = "src/f" + std::to_string(i) + ".py";
    auto u = progress.apply("big", "t" + std::to_string(i), path, s);
    EXPECT_TRUE(u.summary && u.file && u.path == path);
    published.push_back(*progress.summary("big"));
    published.push_back(*progress.file("big", path));
  };
  for (int i = 0; i < kFiles; ++i) step(i, JobProgress::Step::kSubmitted);
  for (int i = 0; i < kFiles; ++i) step(i, JobProgress::Step::kQaPassed);
  const json last_summary = published[published.size() - 2];
  EXPECT_LT(last_summary.dump().size(), 400u);
  EXPECT_LT(published.back().dump().size(), 300u);
  EXPECT_EQ(published.back()["status"], "qa_passed");
  EXPECT_EQ(last_summary["percent"], 100);
  EXPECT_EQ(last_summary["files_done"], kFiles);
  EXPECT_EQ(last_summary["counts"]["qa_passed"], kFiles);
  // A reader folding the records (in any order of versions) sees the same job.
  std::reverse(published.begin(), published.end());
  auto folded = JobProgress::fold(published);
  ASSERT_EQ(folded.count("big"), 1u);
  EXPECT_EQ(folded["big"]["files"].size(), static_cast<std::size_t>(kFiles));
  EXPECT_EQ(folded["big"]["files_done"], kFiles);
  EXPECT_EQ(folded["big"]["files"]["src/f7.py"]["status"], "qa_passed");
  EXPECT_EQ(folded["big"]["version"], last_summary["version"]);
}

TEST(JobProgressTest, ReadsTheFormerInlineFormatBack) {
  JobProgress progress;
  progress.load(json{{"job_id", "old"},
                     {"counts", {{"submitted", 2}, {"qa_passed", 1}}},
                     {"version", 4},
                     {"files",
                      {{"a.py", {{"task_id", "t1"}, {"status", "qa_passed"}}},
                       {"b.py", {{"task_id", "t2"}, {"status", "generated"}}}}}});
  auto doc = progress.get("old");
  ASSERT_TRUE(doc);
  EXPECT_EQ((*doc)["files"].size(), 2u);
  EXPECT_EQ((*doc)["files_done"], 1);
  EXPECT_EQ((*doc)["percent"], 50);
  EXPECT_TRUE(progress.apply("old", "t2", "b.py", JobProgress::Step::kQaPassed).summary);
  EXPECT_EQ((*progress.summary("old"))["version"], 5);
  EXPECT_EQ((*progress.summary("old"))["percent"], 100);
  EXPECT_EQ((*progress.file("old", "b.py"))["version"], 5);
}

}  // namespace
}  // namespace agentline::router

namespace agentline::router {
namespace {

TEST(JobProgressTest, AFileOnlyMovesForwardRedeliveriesChangeNothing) {
  using Step = JobProgress::Step;
  JobProgress p;
  p.apply("j", "t1", "a.py", Step::kSubmitted);
  p.apply("j", "t1", "a.py", Step::kGenerated, "", 0);
  p.apply("j", "t1", "a.py", Step::kQaPassed, "", 0);
  p.apply("j", "t1", "a.py", Step::kDelivered);
  // A replayed FILE_COMPLETED and QA_PASSED after a router crash.
  EXPECT_FALSE(p.apply("j", "t1", "a.py", Step::kGenerated, "", 0).file);
  EXPECT_FALSE(p.apply("j", "t1", "a.py", Step::kQaPassed, "", 0).file);
  auto doc = *p.get("j");
  EXPECT_EQ(doc["files"]["a.py"]["status"], "delivered");
  EXPECT_EQ(doc["counts"]["generated"], 1) << "counters do not pass the file count";
  EXPECT_EQ(doc["counts"]["qa_passed"], 1);
  // A fix attempt is later than the attempt before it, whatever its step.
  p.apply("j", "t2", "b.py", Step::kGenerated, "", 0);
  p.apply("j", "t2", "b.py", Step::kQaFailed, "", 0);
  p.apply("j", "t2", "b.py", Step::kFixRequested, "", 1);
  EXPECT_TRUE(p.apply("j", "t2", "b.py", Step::kGenerated, "", 1).file);
  EXPECT_EQ((*p.get("j"))["files"]["b.py"]["status"], "generated");
  // Another task for the same path takes it over; a deliberate replay always applies.
  EXPECT_TRUE(p.apply("j", "t3", "a.py", Step::kGenerated, "", 0).file);
  EXPECT_TRUE(p.apply("j", "t3", "a.py", Step::kGenerated, "", 0, nullptr, true).file);
}

TEST(JobProgressTest, APlannedFileIgnoresEventsOfItsRoundBeforeAReplan) {
  using Step = JobProgress::Step;
  JobProgress p;
  p.apply("j", "j:0", "a.py", Step::kPlanned, "", 0, {{"depends_on", json::array()}});
  p.apply("j", "j:0", "a.py", Step::kQaFailed, "", 3);
  p.apply("j", "j:0", "a.py", Step::kReplanning);
  p.apply("j", "j:0r1", "a.py", Step::kPlanned, "", 0, {{"depends_on", json::array()}});
  EXPECT_FALSE(p.apply("j", "j:0", "a.py", Step::kQaFailed, "", 3).file) << "the first round's";
  EXPECT_TRUE(p.apply("j", "j:0r1", "a.py", Step::kGenerated, "", 0).file);
  EXPECT_EQ((*p.get("j"))["files"]["a.py"]["task_id"], "j:0r1");
}

}  // namespace
}  // namespace agentline::router

namespace agentline::router {
namespace {

TEST(JobProgressTest, RetentionForgetsFinishedJobsOnlyAndNamesEveryKeyToTombstone) {
  using Step = JobProgress::Step;
  JobProgress p;
  p.apply("done", "t1", "a.py", Step::kDelivered);
  p.apply("done", "t2", "b.py", Step::kDeadLettered, "unsafe_path: x");
  p.apply("open", "t3", "c.py", Step::kQaPassed);  // passed, not delivered yet: still running
  EXPECT_TRUE(p.expire("2000-01-01T00:00:00Z").empty()) << "nothing is older than the cutoff";
  const auto expired = p.expire("2999-01-01T00:00:00Z");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, "done");
  EXPECT_EQ(expired[0].second.back(), "done") << "the summary last, after its files";
  EXPECT_EQ(expired[0].second.size(), 3u);
  EXPECT_FALSE(p.get("done"));
  EXPECT_TRUE(p.get("open"));
  // Another replica's tombstones, read back.
  p.drop("open/c.py");
  EXPECT_EQ((*p.get("open"))["files_total"], 0);
  p.drop("open");
  EXPECT_FALSE(p.get("open"));
}

}  // namespace
}  // namespace agentline::router
