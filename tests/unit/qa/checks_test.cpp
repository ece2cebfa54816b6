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
  EXPECT_EQ(t.for_path("a/b.py")->name, "py_compile");
  EXPECT_EQ(t.for_path("x.C")->name, "gcc") << "extensions are case-insensitive";
  EXPECT_EQ(t.for_path("x.cpp")->name, "g++");
  EXPECT_EQ(t.for_path("x.mjs")->name, "node_check");
  EXPECT_EQ(t.for_path("x.sh")->name, "bash_n");
  EXPECT_EQ(t.for_path("x.yml")->name, "yaml_parse");
  EXPECT_FALSE(t.for_path("README.md"));
  EXPECT_EQ(t.for_path("x.py")->argv, (std::vector<std::string>{"python3", "-m", "py_compile", "{file}"}));
}

TEST(CheckTable, ACommandTableAddsAndReplaces) {
  auto t = CheckTable::defaults();
  t.merge(R"({".py": {"name": "run", "argv": ["python3", "{file}"]},)"
          R"( ".rb": {"argv": ["ruby", "-c", "{file}"], "parser": "plain"}})");
  EXPECT_EQ(t.for_path("x.py")->name, "run");
  EXPECT_EQ(t.for_path("x.rb")->name, "ruby");
  EXPECT_THROW(t.merge(R"({".py": {"argv": ["x"], "shell": true}})"), std::invalid_argument) << "unknown key";
  EXPECT_THROW(t.merge(R"({"py": {"argv": ["x"]}})"), std::invalid_argument) << "not an extension";
  EXPECT_THROW(t.merge(R"({".py": {"name": "x"}})"), std::invalid_argument) << "no argv";
  EXPECT_THROW(t.merge(R"({".py": {"argv": ["x"], "parser": "magic"}})"), std::invalid_argument);
}

}  // namespace
}  // namespace agentline::qa

// Found by tests/fuzz/fuzz_qa_diagnostics: tool output is bytes, not text.
TEST(Diagnostics, InvalidUtf8AndAbsurdLineNumbersStillGiveWritableDiagnostics) {
  const std::string junk = "something \xa0\x9f\x9f\x98 wrong\n";
  for (const char* parser : {"plain", "python", "gcc", "bash", "json", "yaml", "node"}) {
    auto d = agentline::qa::parse_diagnostics(parser, junk, "file.py", "app/file.py", "check");
    EXPECT_NO_THROW((void)d.dump()) << parser;
  }
  auto d = agentline::qa::parse_diagnostics("gcc", "file.c:99999999999999999999:3: error: x\n", "file.c", "app/file.c",
                                            "gcc");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["line"], 1 << 30);
}
