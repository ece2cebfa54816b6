#include "plan.h"

#include <gtest/gtest.h>

#include "generator.h"

namespace agentline::devfix {
namespace {

using nlohmann::json;

json plan_task(json constraints = json::object()) {
  return {{"type", "PLAN_TASK"}, {"payload", {{"goal", "a calculator"}, {"constraints", constraints}}}};
}

bool has_error(const PlanCheck& c, const std::string& part) {
  for (const auto& e : c.errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(PlanCheck, TakesThePlanOutOfProseAndFencesAndNormalizesIt) {
  const std::string reply =
      "Sure! Here is a plan:\n```json\n{\"files\": [{\"path\": \"calc/ops.py\", \"description\": \"add and sub\"},"
      " {\"path\": \"calc/cli.py\", \"description\": \"the CLI\", \"depends_on\": \"calc/ops.py\"}],"
      " \"interface\": {\"calc/ops.py\": [\"add\", \"sub\"]}}\n```\nLet me know.";
  const auto c = check_plan(reply, plan_task(), {});
  ASSERT_TRUE(c.ok()) << c.errors.front();
  ASSERT_EQ(c.plan["files"].size(), 2u);
  EXPECT_EQ(c.plan["files"][0]["language"], "python") << "the language comes from the extension when not given";
  EXPECT_EQ(c.plan["files"][1]["depends_on"], json::array({"calc/ops.py"})) << "one dependency as a string";
  EXPECT_NE(c.plan["interface"].get<std::string>().find("add"), std::string::npos) << "object notes kept as text";
}

TEST(PlanCheck, AcceptsABareArrayOrASingleFileWithoutFences) {
  const auto c = check_plan("[{\"path\": \"a.py\", \"description\": \"a\"}]", plan_task(), {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.plan["files"][0]["path"], "a.py");
  const auto one = check_plan("{\"path\": \"calc.py\", \"description\": \"add\"}", plan_task(), {});
  ASSERT_TRUE(one.ok()) << "a small model's single file where a list was asked for";
  EXPECT_EQ(one.plan["files"].size(), 1u);
  const auto schema = plan_reply_schema(3);
  EXPECT_NE(schema.find("\"maxItems\":3"), std::string::npos);
  EXPECT_LT(schema.find("\"path\""), schema.find("\"depends_on\"")) << "paths are written before dependencies";
}

TEST(PlanCheck, ADependencyWrittenAsAModuleIsItsPath) {
  const auto c = check_plan(R"({"files": [{"path": "app/util.py", "description": "u"},
      {"path": "app/main.py", "description": "m", "depends_on": ["app.util", "app.util.py"]},
      {"path": "app/x.py", "description": "x", "depends_on": ["app.nothing"]}]})",
                            plan_task(), {});
  EXPECT_EQ(c.errors, std::vector<std::string>{"app/x.py depends on app.nothing, which is not a file of the plan"});
  const auto ok = check_plan(R"({"files": [{"path": "app/util.py", "description": "u"},
      {"path": "app/main.py", "description": "m", "depends_on": ["app.util"]}]})",
                             plan_task(), {});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.plan["files"][1]["depends_on"], json::array({"app/util.py"}));
}

TEST(PlanCheck, EveryRuleBrokenIsAnError) {
  const std::string reply = R"({"files": [
      {"path": "a.py", "description": "a", "depends_on": ["b.py"]},
      {"path": "b.py", "description": "b", "depends_on": ["a.py"]},
      {"path": "a.py", "description": "again"},
      {"path": "../etc/passwd", "description": "escape"},
      {"path": "c.py"},
      {"path": "d.py", "description": "d", "depends_on": ["nowhere.py", "d.py"]},
      {"path": "e.py", "description": "e", "parent": "story-9"}]})";
  const auto c = check_plan(reply, plan_task(), {});
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(has_error(c, "\"a.py\" is planned twice"));
  EXPECT_TRUE(has_error(c, "is not allowed"));
  EXPECT_TRUE(has_error(c, "c.py has no \"description\""));
  EXPECT_TRUE(has_error(c, "d.py depends on nowhere.py, which is not a file of the plan"));
  EXPECT_TRUE(has_error(c, "d.py depends on itself"));
  EXPECT_TRUE(has_error(c, "dependency cycle: a.py -> b.py -> a.py"));
  EXPECT_TRUE(has_error(c, "e.py's parent \"story-9\" is not an item of the plan"));
}

TEST(PlanCheck, NoJsonAndTooManyFilesAreErrors) {
  EXPECT_TRUE(has_error(check_plan("I would write a calculator in Python.", plan_task(), {}), "no JSON plan"));
  EXPECT_TRUE(has_error(check_plan("{\"plan\": \"later\"}", plan_task(), {}), "no \"files\""));
  const std::string three = R"({"files": [{"path": "a", "description": "a"}, {"path": "b", "description": "b"},
      {"path": "c", "description": "c"}]})";
  EXPECT_TRUE(has_error(check_plan(three, plan_task({{"max_files", 2}}), {}), "at most 2 are allowed"))
      << "the goal's constraints lower the limit";
  PlanLimits limits;
  limits.max_files = 1;
  EXPECT_TRUE(has_error(check_plan(three, plan_task({{"max_files", 5}}), limits), "at most 1 are allowed"))
      << "--plan-max-files bounds every goal";
}

TEST(PlanCheck, ItemsGiveTheDeliveryHierarchy) {
  const std::string reply = R"({"files": [{"path": "a.py", "description": "a", "parent": "s1"}],
      "items": [{"id": "e1", "kind": "epic", "title": "Calculator"},
                {"id": "s1", "kind": "story", "title": "Operations", "parent": "e1"}]})";
  const auto c = check_plan(reply, plan_task(), {});
  ASSERT_TRUE(c.ok()) << c.errors.front();
  EXPECT_EQ(c.plan["items"].size(), 2u);
  EXPECT_EQ(c.plan["files"][0]["parent"], "s1");
}

TEST(PlanCheck, AReplanRevisesItsFileAddsNewOnesAndIsCheckedInsideThePlan) {
  const json plan = {
      {"files",
       {{{"path", "core.py"}, {"description", "core"}, {"depends_on", json::array()}, {"task_id", "j:0"}},
        {{"path", "cli.py"}, {"description", "cli"}, {"depends_on", {"core.py"}}, {"task_id", "j:1"}}}}};
  const json task = {{"type", "REPLAN_TASK"},
                     {"payload", {{"goal", "g"}, {"path", "cli.py"}, {"description", "cli"}, {"plan", plan}}}};
  const auto ok = check_plan(
      R"({"files": [{"path": "cli.py", "description": "smaller", "depends_on": ["core.py", "args.py"]},
                    {"path": "args.py", "description": "argument parsing"}]})",
      task, {});
  ASSERT_TRUE(ok.ok()) << ok.errors.front();
  ASSERT_EQ(ok.plan["files"].size(), 3u);
  EXPECT_EQ(ok.plan["files"][1]["description"], "smaller");
  EXPECT_TRUE(ok.plan["files"][1]["replanned"]);
  EXPECT_EQ(ok.plan["files"][0]["task_id"], "j:0") << "the other files are kept as they were";

  EXPECT_TRUE(has_error(check_plan(R"({"files": [{"path": "other.py", "description": "x"}]})", task, {}),
                        "does not plan cli.py again"));
  EXPECT_TRUE(has_error(
      check_plan(R"({"files": [{"path": "cli.py", "description": "x"}, {"path": "core.py", "description": "y"}]})",
                 task, {}),
      "core.py is already a file of the plan"));
  EXPECT_TRUE(has_error(check_plan(R"({"files": [{"path": "cli.py", "description": "x"},
      {"path": "core.py", "description": "y"}]})",
                                   task, {}),
                        "a replan may only add new files"));
}

TEST(PlanPrompt, APlanFixAttemptCarriesThePreviousReplyAndItsErrors) {
  json task = plan_task({{"language", "python"}});
  task["payload"]["plan_attempt"] = 1;
  task["payload"]["previous_reply"] = "{\"files\": []}";
  task["payload"]["diagnostics"] = json::array({{{"message", "the plan has no files"}}});
  const auto p = build_plan_prompt(task, {});
  EXPECT_NE(p.user.find("Goal: a calculator"), std::string::npos);
  EXPECT_NE(p.user.find("\"language\":\"python\""), std::string::npos);
  EXPECT_NE(p.user.find("the plan has no files"), std::string::npos);
  EXPECT_NE(p.user.find("{\"files\": []}"), std::string::npos);
  EXPECT_NE(p.system.find("depends_on"), std::string::npos);
}

TEST(TemplatePlanner, PlansAPackageWhoseFilesDependOnEachOtherAndHonoursItsMarkers) {
  auto g = make_template_generator();
  GenerationRequest r;
  r.task = plan_task({{"max_files", 4}});
  r.task["payload"]["goal"] = "A calculator CLI [demo:plan-invalid-once]";
  const auto first = check_plan(g->generate(r).content, r.task, {});
  EXPECT_TRUE(has_error(first, "dependency cycle")) << "the first plan is invalid on purpose";
  r.task["payload"]["plan_attempt"] = 1;
  const auto second = check_plan(g->generate(r).content, r.task, {});
  ASSERT_TRUE(second.ok()) << second.errors.front();
  ASSERT_EQ(second.plan["files"].size(), 4u);
  EXPECT_EQ(second.plan["files"][1]["path"], "calculator_cli/core.py");
  EXPECT_EQ(second.plan["files"][2]["depends_on"], json::array({"calculator_cli/core.py"}));
}

// ---- the openai backend against what real servers return -----------------------------------

json reply(json content, json finish = "stop", json usage = {{"prompt_tokens", 12}, {"completion_tokens", 5}}) {
  json doc = {{"model", "m"}, {"choices", {{{"message", {{"role", "assistant"}, {"content", content}}}}}}};
  if (!finish.is_null()) doc["choices"][0]["finish_reason"] = finish;
  if (!usage.is_null()) doc["usage"] = usage;
  return doc;
}

GenerationError::Kind kind_of(const std::string& body) {
  try {
    parse_chat_completion(body, "prompt", false, "m");
  } catch (const GenerationError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error for " << body;
  return GenerationError::Kind::kRateLimited;
}

TEST(OpenAiReply, CodeWithoutFencesOrWithProseAroundIt) {
  EXPECT_EQ(parse_chat_completion(reply("\n\nx = 1\n\n").dump(), "p", false, "m").content, "x = 1");
  EXPECT_EQ(parse_chat_completion(reply("Here you go:\n```python\nx = 1\n```\nHope it helps!").dump(), "p", false, "m")
                .content,
            "x = 1\n");
}

TEST(OpenAiReply, SeveralFencesTakeTheLongestBlock) {
  const std::string text = "```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n```python\nadd(1, 2)\n```\n";
  EXPECT_EQ(parse_chat_completion(reply(text).dump(), "p", false, "m").content, "def add(a, b):\n    return a + b\n");
  EXPECT_EQ(parse_chat_completion(reply(text).dump(), "p", true, "m").content, text) << "a plan gets the reply as is";
}

TEST(OpenAiReply, AReplyCutAtMaxTokensSaysSo) {
  const auto g = parse_chat_completion(reply("```python\ndef f(:", "length").dump(), "p", false, "m");
  EXPECT_EQ(g.finish_reason, "length") << "dev-fix-worker turns it into FILE_FAILED llm_truncated";
}

TEST(OpenAiReply, EmptyContentIsRejectedAndErrorsInA200AreUnavailable) {
  EXPECT_EQ(kind_of(reply("  \n").dump()), GenerationError::Kind::kRejected);
  EXPECT_EQ(kind_of(reply("```\n```").dump()), GenerationError::Kind::kRejected);
  EXPECT_EQ(kind_of(R"({"error": {"message": "model overloaded", "type": "server_error"}})"),
            GenerationError::Kind::kUnavailable);
  EXPECT_EQ(kind_of(R"({"choices": []})"), GenerationError::Kind::kUnavailable);
  EXPECT_EQ(kind_of("<html>bad gateway</html>"), GenerationError::Kind::kUnavailable);
}

TEST(OpenAiReply, UsageFromTheServerOrEstimatedWhenMissing) {
  const auto told = parse_chat_completion(reply("x = 1").dump(), "p", false, "m");
  EXPECT_EQ(told.prompt_tokens, 12);
  EXPECT_EQ(told.completion_tokens, 5);
  EXPECT_FALSE(told.usage_estimated);
  const auto missing =
      parse_chat_completion(reply("0123456789abcdef", "stop", nullptr).dump(), std::string(400, 'p'), false, "m");
  EXPECT_TRUE(missing.usage_estimated);
  EXPECT_EQ(missing.prompt_tokens, 100);
  EXPECT_EQ(missing.completion_tokens, 4);
}

}  // namespace
}  // namespace agentline::devfix
