#include "checks.h"

#include <gtest/gtest.h>

namespace agentline::qa {
namespace {

struct ParseCase {
  const char* parser;
  const char* output;
  int line;
  const char* message_part;
};

class DiagnosticsTable : public ::testing::TestWithParam<ParseCase> {};

// Real output of the tools, with the sandbox's file name (f.ext) mapped back to the task's path.
TEST_P(DiagnosticsTable, ParsesToolOutput) {
  const auto& c = GetParam();
  const auto diags = parse_diagnostics(c.parser, c.output, "f.x", "src/app/f.x", "check");
  ASSERT_FALSE(diags.empty()) << c.output;
  EXPECT_EQ(diags[0].value("line", 0), c.line) << diags.dump();
  EXPECT_NE(diags[0]["message"].get<std::string>().find(c.message_part), std::string::npos) << diags.dump();
  EXPECT_EQ(diags[0]["file"], "src/app/f.x");
  EXPECT_EQ(diags[0]["severity"], "error");
}

INSTANTIATE_TEST_SUITE_P(
    Tools, DiagnosticsTable,
    ::testing::Values(
        ParseCase{"gcc",
                  "f.x: In function 'main':\nf.x:5:3: error: expected ';' before '}' token\n    5 |   return 0\n", 5,
                  "expected ';'"},
        ParseCase{"python", "  File \"f.x\", line 4\n    def main(:\n             ^\nSyntaxError: invalid syntax\n", 4,
                  "SyntaxError: invalid syntax"},
        ParseCase{
            "node",
            "/work/f.x:2\nfunction main( {\n               ^\n\nSyntaxError: Unexpected token '{'\n    at wrapSafe "
            "(node:internal/modules/cjs/loader:1464:18)\n",
            2, "SyntaxError: Unexpected token"},
        ParseCase{"bash", "f.x: line 4: syntax error: unexpected end of file\n", 4, "unexpected end of file"},
        ParseCase{"json",
                  "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\njson.decoder."
                  "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 18 (char 17)\n",
                  1, "Expecting property name"},
        ParseCase{
            "yaml",
            "yaml.parser.ParserError: while parsing a flow sequence\n  in \"f.x\", line 1, column 7\nexpected ',' or "
            "']', but got '<stream end>'\n  in \"f.x\", line 2, column 1\n",
            2, "expected ','"},
        ParseCase{"plain", "lint: 3 problems\n", 0, "3 problems"}));

TEST(CheckTable, ChecksAreChosenByExtension) {
  const auto t = CheckTable::defaults();
  EXPECT_EQ(t.for_path("a/b.py")[0].name, "py_compile");
  EXPECT_EQ(t.for_path("a/b.py")[1].name, "pyflakes") << "deeper checks run after the syntax check";
  EXPECT_EQ(t.for_path("x.C")[0].name, "gcc") << "extensions are case-insensitive";
  EXPECT_EQ(t.for_path("x.cpp")[0].name, "g++");
  EXPECT_EQ(t.for_path("x.mjs")[0].name, "node_check");
  EXPECT_EQ(t.for_path("x.sh")[0].name, "bash_n");
  EXPECT_EQ(t.for_path("x.sh")[1].name, "shellcheck");
  EXPECT_EQ(t.for_path("x.yml")[0].name, "yaml_parse");
  EXPECT_TRUE(t.for_path("README.md").empty());
  EXPECT_EQ(t.for_path("x.py")[0].argv, (std::vector<std::string>{"python3", "-m", "py_compile", "{file}"}));
}

TEST(CheckTable, ACommandTableAddsAndReplaces) {
  auto t = CheckTable::defaults();
  t.merge(
      R"({".py": {"name": "run", "argv": ["python3", "{file}"]},)"
      R"( ".rb": [{"argv": ["ruby", "-c", "{file}"], "parser": "plain"}, {"name": "rubocop", "argv": ["rubocop"]}]})");
  ASSERT_EQ(t.for_path("x.py").size(), 1u) << "an entry replaces the extension's list";
  EXPECT_EQ(t.for_path("x.py")[0].name, "run");
  ASSERT_EQ(t.for_path("x.rb").size(), 2u);
  EXPECT_EQ(t.for_path("x.rb")[0].name, "ruby");
  EXPECT_EQ(t.for_path("x.rb")[1].name, "rubocop");
  EXPECT_THROW(t.merge(R"({".py": {"argv": ["x"], "shell": true}})"), std::invalid_argument) << "unknown key";
  EXPECT_THROW(t.merge(R"({"py": {"argv": ["x"]}})"), std::invalid_argument) << "not an extension";
  EXPECT_THROW(t.merge(R"({".py": {"name": "x"}})"), std::invalid_argument) << "no argv";
  EXPECT_THROW(t.merge(R"({".py": {"argv": ["x"], "parser": "magic"}})"), std::invalid_argument);
  EXPECT_THROW(t.merge(R"({".py": []})"), std::invalid_argument) << "an empty list";
}

TEST(CheckTable, AToolThatIsNotInstalledIsSkippedNotFailingEveryFile) {
  auto t = CheckTable::defaults();
  int probes = 0;
  const auto dropped = t.drop_unavailable([&](const std::vector<std::string>& argv) {
    ++probes;
    return argv[0] != "shellcheck";
  });
  EXPECT_EQ(probes, 2) << "pyflakes and shellcheck, each once whatever its extensions";
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("shellcheck"), std::string::npos);
  ASSERT_EQ(t.for_path("x.bash").size(), 1u);
  EXPECT_EQ(t.for_path("x.bash")[0].name, "bash_n");
  EXPECT_EQ(t.for_path("x.py").size(), 2u);
}

TEST(CheckTable, JobChecksRunOncePerKindOfFileInTheJob) {
  const auto t = CheckTable::job_defaults();
  const auto checks = t.for_paths({"pkg/a.py", "pkg/b.py", "src/main.c", "src/util.cpp", "README.md"});
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].name, "python_imports_and_tests");
  EXPECT_EQ(checks[1].name, "c_build_and_link");
  EXPECT_EQ(checks[0].parser, "agentline");
  EXPECT_TRUE(t.for_paths({"README.md", "notes.txt"}).empty());
}

// pyflakes' real messages (2.5), and which of them fail a file.
TEST(Diagnostics, PyflakesFindingsAreErrorsOrWarningsByWhatTheyMean) {
  const std::string output =
      "f.x:1:1: 'os' imported but unused\n"
      "f.x:4:12: undefined name 'helper'\n"
      "f.x:6:5: local variable 'unused' is assigned to but never used\n"
      "f.x:8:1: redefinition of unused 'main' from line 3\n"
      "f.x:9:5: 'return' outside function\n";
  const auto d = parse_diagnostics("pyflakes", output, "f.x", "app/f.py", "pyflakes");
  ASSERT_EQ(d.size(), 5u) << d.dump();
  EXPECT_EQ(d[0]["severity"], "warning");
  EXPECT_EQ(d[1]["severity"], "error");
  EXPECT_EQ(d[1]["line"], 4);
  EXPECT_EQ(d[1]["column"], 12);
  EXPECT_EQ(d[1]["file"], "app/f.py");
  EXPECT_EQ(d[2]["severity"], "warning");
  EXPECT_EQ(d[3]["severity"], "warning");
  EXPECT_EQ(d[4]["severity"], "error");
}

TEST(Diagnostics, JobCheckOutputNamesTheJobsFilesAndIgnoresWhatIsNotTheDriversShape) {
  const std::string output =
      "some tool chatter\n"
      "@@agentline {\"file\": \"pkg/cli.py\", \"line\": 1, \"severity\": \"error\", \"check\": \"imports\", "
      "\"message\": \"ImportError: cannot import name 'x' from 'pkg.core' (/work/pkg/core.py)\", \"related\": "
      "[\"pkg/core.py\", 7]}\n"
      "@@agentline {\"file\": 3, \"line\": \"x\", \"message\": \"typed wrong\"}\n"
      "@@agentline not json\n"
      "@@agentline {\"skipped\": \"node is not installed\"}\n";
  std::string skipped;
  const auto d = parse_job_diagnostics("agentline", output, "python_imports_and_tests", &skipped);
  EXPECT_EQ(skipped, "node is not installed");
  ASSERT_EQ(d.size(), 2u) << d.dump();
  EXPECT_EQ(d[0]["file"], "pkg/cli.py");
  EXPECT_EQ(d[0]["line"], 1);
  EXPECT_EQ(d[0]["check"], "imports");
  EXPECT_NE(d[0]["message"].get<std::string>().find("(pkg/core.py)"), std::string::npos) << "the sandbox's root is cut";
  EXPECT_EQ(d[0]["related"], nlohmann::json::array({"pkg/core.py"}));
  EXPECT_EQ(d[1]["file"], "") << "a wrongly typed field gives a default, not an exception";
  EXPECT_FALSE(d[1].contains("line"));
  const auto gcc = parse_job_diagnostics("gcc", "/work/src/a.c:3:1: error: unknown type name 'x'\n", "cc");
  ASSERT_EQ(gcc.size(), 1u);
  EXPECT_EQ(gcc[0]["file"], "src/a.c");
  EXPECT_EQ(gcc[0]["line"], 3);
}

}  // namespace
}  // namespace agentline::qa

// Found by tests/fuzz/fuzz_qa_diagnostics: tool output is bytes, not text.
TEST(Diagnostics, InvalidUtf8AndAbsurdLineNumbersStillGiveWritableDiagnostics) {
  const std::string junk = "something \xa0\x9f\x9f\x98 wrong\n";
  for (const char* parser : {"plain", "python", "gcc", "bash", "json", "yaml", "node", "pyflakes"}) {
    auto d = agentline::qa::parse_diagnostics(parser, junk, "file.py", "app/file.py", "check");
    EXPECT_NO_THROW((void)d.dump()) << parser;
  }
  auto d = agentline::qa::parse_diagnostics("gcc", "file.c:99999999999999999999:3: error: x\n", "file.c", "app/file.c",
                                            "gcc");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["line"], 1 << 30);
}
