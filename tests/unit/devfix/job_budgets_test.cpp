#include "job_budgets.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "agentline/events/timestamps.h"
#include "agentline/resilience/clock.h"

using agentline::devfix::JobBudgets;
using nlohmann::json;

namespace {
agentline::kafka::InboundRecord progress(const std::string& key, const json& value, std::int64_t age_ms = 0) {
  agentline::kafka::InboundRecord r;
  r.topic = "agentline.jobs.progress";
  r.key = key;
  r.value = value.is_null() ? "" : value.dump();
  r.timestamp_ms = agentline::events::now_ms() - age_ms;
  return r;
}
json spent(const std::string& job, const std::string& tenant, double usd, std::int64_t tokens = 0) {
  return {{"job_id", job}, {"tenant", tenant}, {"usage", {{"tokens", tokens}, {"cost_usd", usd}}}};
}
}  // namespace

TEST(JobBudgets, AJobIsStoppedWhenItsSummarySaysItsBudgetIsSpentAndGoesOnWhenRaised) {
  JobBudgets budgets;
  budgets.apply(progress("j1", {{"job_id", "j1"}, {"budget", {{"tokens", 100}, {"exhausted", false}}}}));
  EXPECT_FALSE(budgets.exhausted("j1"));
  budgets.apply(progress("j1", {{"job_id", "j1"},
                                {"usage", {{"tokens", 120}, {"cost_usd", 0.5}}},
                                {"budget", {{"tokens", 100}, {"exhausted", true}}}}));
  auto why = budgets.exhausted("j1");
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("120 tokens of 100"), std::string::npos) << *why;
  EXPECT_NE(why->find("agentline budget j1"), std::string::npos) << *why;
  // A file's record of the job says nothing about the budget.
  budgets.apply(progress("j1/a.py", {{"job_id", "j1"}, {"path", "a.py"}, {"budget", "ignored"}}));
  EXPECT_TRUE(budgets.exhausted("j1"));
  budgets.apply(progress(
      "j1", {{"job_id", "j1"}, {"usage", {{"tokens", 120}}}, {"budget", {{"tokens", 1000}, {"exhausted", false}}}}));
  EXPECT_FALSE(budgets.exhausted("j1"));
}

TEST(JobBudgets, OnlyJobsWithABudgetAreKeptAndATombstoneForgetsOne) {
  JobBudgets budgets;
  budgets.apply(progress("free", {{"job_id", "free"}, {"usage", {{"tokens", 1000000}}}}));
  EXPECT_FALSE(budgets.exhausted("free"));
  budgets.apply(progress("j2", {{"job_id", "j2"}, {"budget", {{"cost_usd", 1.0}, {"exhausted", true}}}}));
  EXPECT_EQ(budgets.size(), 1u);
  budgets.apply(progress("j2", nullptr));
  EXPECT_EQ(budgets.size(), 0u);
  EXPECT_FALSE(budgets.exhausted("j2"));
  budgets.apply(progress("j3", "not a summary \"budget\""));
  EXPECT_FALSE(budgets.exhausted("j3")) << "an unreadable record is no reason to stop a job";
}

TEST(JobBudgets, ATenantIsChargedWhatEachOfItsJobsSpentOnceWhicheverReplicaSpentIt) {
  agentline::resilience::ManualClock clock;
  JobBudgets budgets(clock, /*count_tenants=*/true);
  agentline::devfix::LlmLimits limits;
  limits.usd_per_day = 1.0;
  limits.usd_per_month = 3.0;
  // Job j1's calls (made by any replica) as the router summed them: 0.40, then 0.70 in all.
  budgets.apply(progress("j1", spent("j1", "acme", 0.40, 400)));
  budgets.apply(progress("j1", spent("j1", "acme", 0.70, 700)));
  budgets.apply(progress("j1", spent("j1", "acme", 0.70, 700)));  // redelivered: nothing more
  budgets.apply(progress("j1/a.py", {{"job_id", "j1"}, {"path", "a.py"}, {"usage", {{"cost_usd", 9.0}}}}));
  EXPECT_NEAR(budgets.tenant_spent("acme").usd_day, 0.70, 1e-9);
  EXPECT_EQ(budgets.tenant_spent("acme").tokens_day, 700);
  EXPECT_FALSE(budgets.tenant_over("acme", limits));
  budgets.apply(progress("j2", spent("j2", "acme", 0.35)));
  budgets.apply(progress("g1", spent("g1", "globex", 5.0)));
  budgets.apply(progress("anon", {{"job_id", "anon"}, {"usage", {{"cost_usd", 2.0}}}}));
  const auto hold = budgets.tenant_over("acme", limits);
  ASSERT_TRUE(hold) << "$1.05 of $1.00 a day";
  EXPECT_NE(hold->why.find("$1.0500 spent"), std::string::npos) << hold->why;
  EXPECT_GT(hold->wait, std::chrono::hours(23)) << "room comes back when today's spending leaves the day";
  EXPECT_TRUE(budgets.tenant_over("globex", limits));
  EXPECT_TRUE(budgets.tenant_over("default", limits)) << "a job naming no tenant is the default tenant's";
  EXPECT_FALSE(budgets.tenant_over("acme", {})) << "no budget, no hold";

  // A day later the day's budget has room again; the 30 days' still counts it.
  clock.advance(std::chrono::hours(25));
  EXPECT_FALSE(budgets.tenant_over("acme", limits));
  EXPECT_NEAR(budgets.tenant_spent("acme").usd_month, 1.05, 1e-9);
  // Spending read back after a restart is charged at its record's time: two days old, it is in
  // the 30 days only.
  const auto two_days_ms = std::int64_t{2} * 24 * 3600 * 1000;
  budgets.apply(progress("old", spent("old", "acme", 2.0), two_days_ms));
  EXPECT_NEAR(budgets.tenant_spent("acme").usd_day, 0.0, 1e-9);
  const auto month = budgets.tenant_over("acme", limits);
  ASSERT_TRUE(month) << "$3.05 of $3.00 in 30 days";
  EXPECT_NE(month->why.find("per 30 days"), std::string::npos) << month->why;
  // A tombstone forgets the job, not what its tenant spent.
  budgets.apply(progress("j1", nullptr));
  EXPECT_NEAR(budgets.tenant_spent("acme").usd_month, 3.05, 1e-9);
}

TEST(JobBudgets, ThisReplicasCallsCountAtOnceUntilASummaryMadeAfterThemArrives) {
  JobBudgets budgets;
  budgets.note_budget("j", {{"tokens", 1000}});
  budgets.note_budget("j", {{"tokens", 1}});  // only for a job not known yet
  const auto t0 = agentline::events::now_ms();
  budgets.charge("j", 600, 0, t0);
  EXPECT_FALSE(budgets.exhausted("j"));
  budgets.charge("j", 500, 0, t0 + 10);
  auto why = budgets.exhausted("j");
  ASSERT_TRUE(why) << "1,100 tokens spent here before any summary says so";
  EXPECT_NE(why->find("1100 tokens of 1000"), std::string::npos) << *why;
  // The router's summary made after the first call (it includes it, maybe the second): only the
  // second still counts on top of it.
  auto summary = progress(
      "j", {{"job_id", "j"}, {"usage", {{"tokens", 600}}}, {"budget", {{"tokens", 1000}, {"exhausted", false}}}});
  summary.timestamp_ms = t0 + 5;
  budgets.apply(summary);
  EXPECT_TRUE(budgets.exhausted("j")) << "600 in the summary + 500 made after it";
  summary.timestamp_ms = t0 + 20;
  budgets.apply(summary);
  EXPECT_FALSE(budgets.exhausted("j")) << "a summary made after both calls that shows 600 is what was spent";
  budgets.charge("other", 5000, 0, t0);
  EXPECT_FALSE(budgets.exhausted("other")) << "a job without a budget is not tracked";
}
