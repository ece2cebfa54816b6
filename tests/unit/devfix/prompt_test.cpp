#include "prompt.h"

#include <gtest/gtest.h>

#include "generator.h"
#include "review.h"

namespace agentline::devfix {
namespace {

using nlohmann::json;

TEST(Prompt, AFixPromptCarriesThePreviousContentAndTheDiagnostics) {
  const json task = {{"type", "FIX_TASK"},
                     {"payload",
                      {{"path", "app/x.py"},
                       {"description", "write x"},
                       {"fix_attempt", 2},
                       {"previous_content", "def x(:\n"},
                       {"diagnostics", json::array({{{"line", 1}, {"message", "SyntaxError: invalid syntax"}}})}}}};
  const auto p = build_prompt(task);
  EXPECT_NE(p.user.find("File: app/x.py"), std::string::npos);
  EXPECT_NE(p.user.find("fix attempt 2"), std::string::npos);
  EXPECT_NE(p.user.find("def x(:"), std::string::npos);
  EXPECT_NE(p.user.find("- line 1: SyntaxError: invalid syntax"), std::string::npos);
  const json dev = {{"type", "DEV_TASK"}, {"payload", {{"path", "app/x.py"}, {"description", "write x"}}}};
  EXPECT_EQ(build_prompt(dev).user.find("Diagnostics"), std::string::npos);
}

TEST(Prompt, AJobCheckFixNamesTheOtherFilesWarningsAndTheCheck) {
  const json task = {
      {"type", "FIX_TASK"},
      {"payload",
       {{"path", "calc/cli.py"},
        {"description", "the CLI"},
        {"fix_attempt", 1},
        {"job_check_attempt", 1},
        {"previous_content", "from calc.core import core_missing\n"},
        {"diagnostics",
         json::array({{{"file", "calc/cli.py"},
                       {"line", 1},
                       {"check", "imports"},
                       {"message", "ImportError: cannot import name 'core_missing'"}},
                      {{"file", "tests/test_cli.py"}, {"line", 4}, {"check", "pytest"}, {"message", "test_cli failed"}},
                      {{"line", 2}, {"severity", "warning"}, {"message", "'os' imported but unused"}}})}}}};
  const auto p = build_prompt(task);
  EXPECT_NE(p.user.find("- line 1: [imports] ImportError: cannot import name 'core_missing'"), std::string::npos)
      << p.user;
  EXPECT_NE(p.user.find("- tests/test_cli.py line 4: [pytest] test_cli failed"), std::string::npos) << p.user;
  EXPECT_NE(p.user.find("- line 2: (warning) 'os' imported but unused"), std::string::npos) << p.user;
  EXPECT_NE(p.user.find("checking the whole job together"), std::string::npos);
}

TEST(Review, FindingsBecomeDiagnosticsAndAnUnreadableReplyFailsNothing) {
  bool readable = false;
  auto d = parse_review(
      "Here you go:\n```json\n{\"findings\": [{\"line\": 3, \"severity\": \"error\", \"message\": \"SQL built from "
      "input\"}, {\"severity\": \"note\", \"message\": \"naming\"}, {\"line\": \"x\", \"message\": 5}]}\n```",
      "app/db.py", "security", &readable);
  EXPECT_TRUE(readable);
  ASSERT_EQ(d.size(), 2u) << d.dump();
  EXPECT_EQ(d[0]["severity"], "error");
  EXPECT_EQ(d[0]["line"], 3);
  EXPECT_EQ(d[0]["check"], "review:security");
  EXPECT_EQ(d[0]["file"], "app/db.py");
  EXPECT_EQ(d[1]["severity"], "warning") << "anything but error is a warning";
  d = parse_review("I think it is fine.", "app/db.py", "security", &readable);
  EXPECT_FALSE(readable);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["severity"], "warning");
  EXPECT_TRUE(parse_review("{\"findings\": []}", "a.py", "correctness").empty());
}

TEST(Review, ThePromptNamesTheReviewerItsFocusAndTheFile) {
  const json task = {{"type", "REVIEW_TASK"},
                     {"payload",
                      {{"path", "app/auth.py"},
                       {"description", "Login"},
                       {"content", "def login(user, password):\n    return True\n"},
                       {"reviewers", {"security"}}}}};
  const auto p = build_review_prompt(task, "security", 24000);
  EXPECT_NE(p.system.find("security reviewer"), std::string::npos);
  EXPECT_NE(p.user.find("injection"), std::string::npos);
  EXPECT_NE(p.user.find("def login(user, password)"), std::string::npos);
  EXPECT_NE(p.user.find("File: app/auth.py"), std::string::npos);
}

TEST(TemplateGenerator, ReviewsFollowTheirMarkers) {
  auto g = make_template_generator();
  GenerationRequest r;
  r.task = {
      {"type", "REVIEW_TASK"},
      {"payload", {{"path", "a/auth.py"}, {"description", "x [demo:review-error-once]"}, {"reviewer", "security"}}}};
  r.path = "a/auth.py";
  EXPECT_EQ(parse_review(g->generate(r).content, "a/auth.py", "security")[0]["severity"], "error");
  r.fix_attempt = 1;
  EXPECT_TRUE(parse_review(g->generate(r).content, "a/auth.py", "security").empty());
}

TEST(Prompt, ContextFilesAreCompactedWithinTheBudget) {
  std::string big =
      "\"\"\"Module docstring\nspanning lines.\n\"\"\"\n# a comment\nimport os\n\n\n\ndef f():\n    # inner\n    "
      "return 1\n";
  const std::string compacted = compact_source("m.py", big);
  EXPECT_EQ(compacted, "import os\n\ndef f():\n    return 1\n");
  EXPECT_LT(compacted.size() * 10, big.size() * 7) << "at least 30% smaller";
  EXPECT_EQ(compact_source("a.c", "/* licence\n text */\n// note\nint x;\n"), "int x;\n");
  std::string huge(100000, 'x');
  const json task = {{"type", "DEV_TASK"},
                     {"payload",
                      {{"path", "a.py"},
                       {"description", "d"},
                       {"context_files", json::array({{{"path", "big.txt"}, {"content", huge}}})}}}};
  const auto p = build_prompt(task, 1000);
  EXPECT_LT(p.user.size(), 1500u);
  EXPECT_NE(p.user.find("cut to the context budget"), std::string::npos);
}

// A planned file's prompt: the job's goal, interface notes and file list, and its
// dependencies' content; a fix also sees the files that import it.
json planned_task(const std::string& type) {
  return {
      {"type", type},
      {"payload",
       {{"path", "calc/cli.py"},
        {"description", "the command line"},
        {"job",
         {{"goal", "GOAL: a calculator"},
          {"interface", "INTERFACE: ops.add(a, b)"},
          {"files",
           {{{"path", "calc/ops.py"}, {"description", "OPS-LINE"}},
            {{"path", "calc/cli.py"}, {"description", "CLI-LINE"}, {"depends_on", {"calc/ops.py"}}}}}}},
        {"context_files",
         {{{"path", "tests/test_cli.py"}, {"content", std::string(3000, 'T')}, {"relation", "dependant"}},
          {{"path", "calc/ops.py"}, {"content", "def add(a, b):\n    return a + b\n"}, {"relation", "dependency"}}}},
        {"dependency_failures", {{{"path", "calc/errors.py"}, {"reason", "qa_failed_max: SyntaxError"}}}}}}};
}

TEST(Prompt, APlannedFileKnowsItsJob) {
  const auto p = build_prompt(planned_task("DEV_TASK"), 24000);
  for (const char* part : {"GOAL: a calculator", "INTERFACE: ops.add(a, b)", "- calc/ops.py: OPS-LINE",
                           "- calc/cli.py: CLI-LINE (imports calc/ops.py)", "Context file calc/ops.py:",
                           "def add(a, b):", "Dependency calc/errors.py could not be completed (qa_failed_max"}) {
    EXPECT_NE(p.user.find(part), std::string::npos) << part << " is missing from:\n" << p.user;
  }
  EXPECT_LT(p.user.find("Context file calc/ops.py"), p.user.find("Context file tests/test_cli.py"))
      << "dependencies come before the files that import it";
}

TEST(Prompt, WhatIsCutFirstIsOtherFilesThenTheFileListThenTheInterface) {
  const json task = planned_task("DEV_TASK");
  // Room for the goal, the dependency and the interface, not for the file list and the dependant.
  const std::size_t room =
      std::string("GOAL: a calculator").size() + 40 + std::string("INTERFACE: ops.add(a, b)").size();
  const auto small = build_prompt(task, room);
  EXPECT_NE(small.user.find("GOAL: a calculator"), std::string::npos);
  EXPECT_NE(small.user.find("def add(a, b):"), std::string::npos) << "dependencies are cut late";
  EXPECT_EQ(small.user.find("TTTTTTTTTT"), std::string::npos) << "other files are cut first";
  EXPECT_EQ(small.user.find("CLI-LINE"), std::string::npos) << "then the file list";
  // No room at all: the file's own task stays; every part of the context is cut.
  const auto none = build_prompt(task, 0);
  EXPECT_NE(none.user.find("Task: the command line"), std::string::npos);
  EXPECT_EQ(none.user.find("def add"), std::string::npos);
  EXPECT_EQ(none.user.find("OPS-LINE"), std::string::npos);
  // The budget bounds what the context adds, whatever its size.
  const auto bare =
      build_prompt({{"type", "DEV_TASK"}, {"payload", {{"path", "calc/cli.py"}, {"description", "the command line"}}}});
  EXPECT_LE(build_prompt(task, 500).user.size(), bare.user.size() + 500 + 600)
      << "500 of context plus headings and notes";
}

TEST(TemplateGenerator, APlannedPythonFileImportsWhatItsDependenciesDefine) {
  auto g = make_template_generator();
  GenerationRequest r;
  r.path = "calc/cli.py";
  r.task = planned_task("DEV_TASK");
  r.task["payload"]["context_files"][1]["content"] = "def ops_info():\n    return \"ops\"\n";
  const auto content = g->generate(r).content;
  EXPECT_NE(content.find("from calc.ops import ops_info"), std::string::npos) << content;
  EXPECT_NE(content.find("def cli_info():"), std::string::npos) << content;
}

TEST(ExtractCode, TakesTheFencedBlock) {
  EXPECT_EQ(extract_code("Sure!\n```python\nx = 1\n```\nDone."), "x = 1\n");
  EXPECT_EQ(extract_code("```\na\n```"), "a\n");
  EXPECT_EQ(extract_code("no fences"), "no fences");
  EXPECT_EQ(extract_code("```js\nunterminated"), "unterminated");
}

TEST(TemplateGenerator, DeterministicAndHonoursTheDemoMarkers) {
  auto g = make_template_generator();
  GenerationRequest r;
  r.path = "a.py";
  r.task = {{"payload", {{"description", "hello [demo:fails-qa-once]"}}}};
  const auto first = g->generate(r).content;
  EXPECT_EQ(first, g->generate(r).content);
  EXPECT_NE(first.find("def main(:"), std::string::npos) << "broken on the first attempt";
  r.fix_attempt = 1;
  EXPECT_NE(g->generate(r).content.find("def main():"), std::string::npos) << "fixed on the fix";
  r.task["payload"]["description"] = "[demo:never-passes]";
  r.fix_attempt = 3;
  EXPECT_NE(g->generate(r).content.find("def main(:"), std::string::npos);
}

TEST(Prices, UnknownKeysAreErrors) {
  auto p = parse_prices(R"({"gpt-4o-mini": {"prompt_per_1k": 0.00015, "completion_per_1k": 0.0006}})");
  EXPECT_DOUBLE_EQ(p["gpt-4o-mini"].completion_per_1k, 0.0006);
  EXPECT_THROW(parse_prices(R"({"m": {"per_token": 1}})"), std::invalid_argument);
}

}  // namespace
}  // namespace agentline::devfix

#include <atomic>
#include <latch>
#include <thread>

#include "batch_coalescer.h"

namespace agentline::devfix {
namespace {

TEST(SplitBatchReply, OneBlockPerFileMarker) {
  const std::string reply =
      "Sure.\nFile: a.py\n```python\nx = 1\n```\nFile: a.py.bak\n```\nnope\n```\nFile: lib/b.py\n```python\ny = "
      "2\n```\n";
  const auto files = split_batch_reply(reply, {"a.py", "lib/b.py", "missing.py"});
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files.at("a.py"), "x = 1\n");
  EXPECT_EQ(files.at("lib/b.py"), "y = 2\n");
}

TEST(BatchCoalescer, SmallFilesOfOneJobShareACall) {
  std::atomic<int> calls{0};
  std::atomic<int> largest{0};
  BatchCoalescer batches(3, 10000, std::chrono::seconds(10), [&](const std::vector<GenerationRequest>& reqs) {
    calls.fetch_add(1);
    largest = std::max<int>(largest, static_cast<int>(reqs.size()));
    std::vector<Generation> out;
    for (const auto& r : reqs) out.push_back({"content of " + r.path, 1, 1, 0, "m"});
    return out;
  });
  std::vector<std::string> got(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      GenerationRequest r;
      r.path = "f" + std::to_string(i);
      r.max_tokens = 100;
      got[i] = batches.submit("job-1", r).content;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1) << "the third file filled the batch: no need to wait out the linger";
  EXPECT_EQ(largest.load(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], "content of f" + std::to_string(i));
  EXPECT_EQ(batches.batched_files(), 3);
}

TEST(BatchCoalescer, TheCallsExceptionReachesEveryFileAndJobsDoNotMix) {
  BatchCoalescer batches(2, 10000, std::chrono::seconds(10),
                         [&](const std::vector<GenerationRequest>& reqs) -> std::vector<Generation> {
                           for (const auto& r : reqs) {
                             if (r.path == "bad") throw GenerationError(GenerationError::Kind::kUnavailable, "503");
                           }
                           return std::vector<Generation>(reqs.size(), Generation{"ok", 0, 0, 0, "m"});
                         });
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      GenerationRequest r;
      r.path = i == 0 ? "bad" : "other";
      r.max_tokens = 10;
      try {
        batches.submit("job-a", r);
      } catch (const GenerationError&) {
        failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 2) << "both files shared the failed call";
  GenerationRequest lone;
  lone.path = "x";
  lone.max_tokens = 10;
  BatchCoalescer quick(4, 10000, std::chrono::milliseconds(1), [](const std::vector<GenerationRequest>& reqs) {
    return std::vector<Generation>(reqs.size(), Generation{"alone", 0, 0, 0, "m"});
  });
  EXPECT_EQ(quick.submit("job-b", lone).content, "alone") << "a lone file goes after the linger";
}

}  // namespace
}  // namespace agentline::devfix
