// Which reviewers a file gets: only the relevant ones run (docs/qa.md).
#include "review_rules.h"

#include <gtest/gtest.h>

namespace agentline::router {
namespace {

struct Case {
  const char* path;
  const char* content;
  std::vector<std::string> dependants;
  std::vector<std::string> reviewers;
};

class BuiltInRules : public ::testing::TestWithParam<Case> {};

TEST_P(BuiltInRules, ChooseTheRelevantReviewers) {
  const auto& c = GetParam();
  EXPECT_EQ(ReviewRules::load("").reviewers_for(c.path, c.content, c.dependants), c.reviewers) << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Files, BuiltInRules,
    ::testing::Values(Case{"app/auth.py", "def login(): ...", {}, {"security"}},
                      Case{"app/Session_store.py", "", {}, {"security"}}, Case{"app/api.py", "", {}, {"security"}},
                      Case{"app/calc.py", "x = eval(text)", {}, {"security"}},
                      Case{"app/calc.py", "import subprocess", {"tests/test_calc.py"}, {"correctness", "security"}},
                      Case{"app/calc.py", "def add(a, b): return a + b", {"tests/test_calc.py"}, {"correctness"}},
                      Case{"src/sum.js", "module.exports = 1", {"src/sum.test.js"}, {"correctness"}},
                      Case{"app/calc.py", "def add(a, b): return a + b", {"app/cli.py"}, {}},
                      Case{"README.md", "# notes", {}, {}}));

TEST(ReviewRules, ATableOfYourOwnAndItsErrors) {
  const auto rules =
      ReviewRules::parse(R"({"reviewers": {"docs": {"paths": ["\\.md$"]}, "perf": {"contains": ["for "]}}})");
  EXPECT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules.reviewers_for("README.md", "for x", {}), (std::vector<std::string>{"docs", "perf"}));
  EXPECT_THROW(ReviewRules::parse(R"({"reviewers": {"x": {"paths": ["("]}}})"), std::invalid_argument) << "bad regex";
  EXPECT_THROW(ReviewRules::parse(R"({"reviewers": {"x": {"globs": ["*"]}}})"), std::invalid_argument) << "unknown key";
  EXPECT_THROW(ReviewRules::parse(R"({"reviewers": {}, "extra": 1})"), std::invalid_argument);
  EXPECT_THROW(ReviewRules::parse(R"([1])"), std::invalid_argument);
}

}  // namespace
}  // namespace agentline::router
