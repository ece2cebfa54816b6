#include "job_budgets.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using agentline::devfix::JobBudgets;
using nlohmann::json;

namespace {
agentline::kafka::InboundRecord progress(const std::string& key, const json& value) {
  agentline::kafka::InboundRecord r;
  r.topic = "agentline.jobs.progress";
  r.key = key;
  r.value = value.is_null() ? "" : value.dump();
  return r;
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
