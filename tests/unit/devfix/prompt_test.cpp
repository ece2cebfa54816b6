#include "prompt.h"

#include <gtest/gtest.h>

#include "generator.h"

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

TEST(ExtractCode, TakesTheFirstFencedBlock) {
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
