#include "dependency_gate.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace agentline::router {
namespace {

using nlohmann::json;

// core <- cli <- readme ; core <- test ; util (alone)
json plan_payload() {
  return {
      {"goal", "a calculator"},
      {"tenant", "acme"},
      {"plan",
       {{"files",
         {{{"path", "calc/core.py"}, {"description", "core"}, {"language", "python"}, {"depends_on", json::array()}},
          {{"path", "calc/cli.py"}, {"description", "cli"}, {"language", "python"}, {"depends_on", {"calc/core.py"}}},
          {{"path", "tests/test_core.py"}, {"description", "tests"}, {"depends_on", {"calc/core.py"}}},
          {{"path", "README.md"}, {"description", "readme"}, {"depends_on", {"calc/cli.py"}}},
          {{"path", "calc/util.py"}, {"description", "util"}, {"depends_on", json::array()}}}},
        {"interface", "core_info()"}}}};
}

std::vector<std::string> paths(const DependencyGate::Output& out) {
  std::vector<std::string> p;
  for (const auto& t : out.tasks) p.push_back(t["payload"]["path"]);
  std::sort(p.begin(), p.end());
  return p;
}

// What a restarted router reads back: every record published so far, in order.
void replay(DependencyGate& into, const std::vector<DependencyGate::Output>& history) {
  for (const auto& out : history) {
    for (const auto& [key, value] : out.records) into.load(key, value);
  }
}

TEST(DependencyGate, FilesAreReleasedOnceTheirDependenciesPassedWithTheirContent) {
  DependencyGate gate;
  const auto first = gate.accept_plan("j", plan_payload());
  EXPECT_EQ(paths(first), (std::vector<std::string>{"calc/core.py", "calc/util.py"}));
  const auto& core = first.tasks[0]["payload"]["path"] == "calc/core.py" ? first.tasks[0] : first.tasks[1];
  EXPECT_EQ(core["type"], "DEV_TASK");
  EXPECT_EQ(core["task_id"], "j:0");
  EXPECT_EQ(core["payload"]["dependants"], 3) << "cli, its README and the test wait on core";
  EXPECT_EQ(core["payload"]["tenant"], "acme");
  EXPECT_EQ(core["payload"]["job"]["goal"], "a calculator");
  EXPECT_EQ(core["payload"]["job"]["files"].size(), 5u);

  EXPECT_TRUE(gate.passed("j", "calc/util.py", "u").tasks.empty()) << "nothing waits on util";
  const auto after_core = gate.passed("j", "calc/core.py", "def core_info():\n    return 'core'\n");
  EXPECT_EQ(paths(after_core), (std::vector<std::string>{"calc/cli.py", "tests/test_core.py"}));
  const auto& cli = after_core.tasks[0]["payload"]["path"] == "calc/cli.py" ? after_core.tasks[0] : after_core.tasks[1];
  ASSERT_EQ(cli["payload"]["context_files"].size(), 1u);
  EXPECT_EQ(cli["payload"]["context_files"][0]["path"], "calc/core.py");
  EXPECT_EQ(cli["payload"]["context_files"][0]["relation"], "dependency");
  EXPECT_NE(cli["payload"]["context_files"][0]["content"].get<std::string>().find("core_info"), std::string::npos);
  EXPECT_EQ(paths(gate.passed("j", "calc/cli.py", "c")), (std::vector<std::string>{"README.md"}));
}

TEST(DependencyGate, RedeliveredAndReplayedEventsReleaseNothingTwice) {
  std::vector<DependencyGate::Output> history;
  DependencyGate gate;
  history.push_back(gate.accept_plan("j", plan_payload()));
  // The router reads its released tasks back from tasks.submitted: released for good.
  history.push_back(gate.confirm("j", "calc/core.py", "j:0"));
  history.push_back(gate.confirm("j", "calc/util.py", "j:4"));
  history.push_back(gate.passed("j", "calc/core.py", "core"));
  EXPECT_TRUE(gate.passed("j", "calc/core.py", "core").tasks.empty()) << "a redelivered QA_PASSED";
  EXPECT_TRUE(gate.accept_plan("j", plan_payload()).records.empty()) << "a second plan for the job";
  history.push_back(gate.confirm("j", "calc/cli.py", "j:1"));
  history.push_back(gate.confirm("j", "tests/test_core.py", "j:2"));
  EXPECT_TRUE(gate.confirm("j", "calc/cli.py", "j:1").records.empty()) << "a task read back twice";
  EXPECT_TRUE(gate.confirm("j", "README.md", "other:3").records.empty()) << "not the file's task";

  // A crash: a new router reads jobs.plans back, then the unfinished tail is replayed.
  DependencyGate restarted;
  replay(restarted, history);
  EXPECT_TRUE(restarted.accept_plan("j", plan_payload()).tasks.empty());
  EXPECT_TRUE(restarted.passed("j", "calc/core.py", "core").tasks.empty());
  EXPECT_EQ(paths(restarted.passed("j", "calc/cli.py", "c")), (std::vector<std::string>{"README.md"}))
      << "and goes on where the old one stopped";

  // Records read back in any order (plan and file records live in different partitions).
  DependencyGate reordered;
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    for (auto r = it->records.rbegin(); r != it->records.rend(); ++r) reordered.load(r->first, r->second);
  }
  EXPECT_TRUE(reordered.passed("j", "calc/core.py", "core").tasks.empty());
}

TEST(DependencyGate, AReleaseNotReadBackBeforeACrashIsReleasedAgain) {
  std::vector<DependencyGate::Output> history;
  DependencyGate gate;
  history.push_back(gate.accept_plan("j", plan_payload()));
  history.push_back(gate.passed("j", "calc/core.py", "core"));  // cli and test released, not read back
  DependencyGate restarted;
  replay(restarted, history);
  EXPECT_EQ(paths(restarted.passed("j", "calc/core.py", "core")),
            (std::vector<std::string>{"calc/cli.py", "calc/util.py", "tests/test_core.py"}))
      << "the replayed QA_PASSED releases what was not read back (util too), with the same task ids";
}

TEST(DependencyGate, AGivenUpDependencyReleasesItsDependantsWithThatFact) {
  DependencyGate gate;
  gate.accept_plan("j", plan_payload());
  const auto out = gate.failed("j", "calc/core.py", "qa_failed_max: SyntaxError");
  ASSERT_EQ(paths(out), (std::vector<std::string>{"calc/cli.py", "tests/test_core.py"}));
  const auto& payload = out.tasks[0]["payload"];
  ASSERT_TRUE(payload.contains("dependency_failures"));
  EXPECT_EQ(payload["dependency_failures"][0]["path"], "calc/core.py");
  EXPECT_EQ(payload["dependency_failures"][0]["reason"], "qa_failed_max: SyntaxError");
  EXPECT_FALSE(payload.contains("context_files"));
}

TEST(DependencyGate, AReplanRevisesTheFileOnceWithANewTaskIdAndWaitsForItsNewDependency) {
  DependencyGate gate;
  gate.accept_plan("j", plan_payload());
  gate.passed("j", "calc/core.py", "core");
  json replan = {
      {"replan_of", "calc/cli.py"},
      {"plan",
       {{"files",
         {{{"path", "calc/cli.py"}, {"description", "smaller"}, {"depends_on", {"calc/core.py", "calc/args.py"}}},
          {{"path", "calc/args.py"}, {"description", "args"}, {"depends_on", json::array()}}}}}}};
  const auto out = gate.accept_replan("j", "j:1", replan);
  EXPECT_EQ(paths(out), (std::vector<std::string>{"calc/args.py"})) << "cli waits for its new dependency";
  EXPECT_EQ(out.tasks[0]["task_id"], "j:5");
  EXPECT_EQ(gate.replans("j", "calc/cli.py"), 1);
  EXPECT_TRUE(gate.accept_replan("j", "j:1", replan).records.empty()) << "a replayed replan applies once";
  const auto cli = gate.passed("j", "calc/args.py", "args");
  ASSERT_EQ(paths(cli), (std::vector<std::string>{"calc/cli.py"}));
  EXPECT_EQ(cli.tasks[0]["task_id"], "j:1r1") << "new events, not duplicates of the first round's";
  EXPECT_EQ(cli.tasks[0]["payload"]["description"], "smaller");
}

TEST(DependencyGate, AFixSeesTheFilesThatImportIt) {
  DependencyGate gate;
  gate.accept_plan("j", plan_payload());
  gate.passed("j", "calc/core.py", "core");
  gate.passed("j", "calc/cli.py", "import core");
  const auto ctx = gate.context_for("j", "calc/core.py", true);
  ASSERT_TRUE(ctx.contains("context_files"));
  EXPECT_EQ(ctx["context_files"][0]["path"], "calc/cli.py");
  EXPECT_EQ(ctx["context_files"][0]["relation"], "dependant");
  EXPECT_FALSE(gate.context_for("j", "calc/core.py", false).contains("context_files"));
  EXPECT_TRUE(gate.context_for("other", "x", true).empty());
}

}  // namespace
}  // namespace agentline::router
