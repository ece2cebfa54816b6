// The job checks as qa-worker runs them: the built-in driver in bubblewrap, on jobs whose files
// each pass alone but fail together. Each finding must name the job's file a fix should go to.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <prometheus/registry.h>

#include "agentline/kafka/topic_catalog.h"
#include "checks.h"
#include "qa_worker.h"
#include "sandbox.h"

namespace fs = std::filesystem;
using agentline::qa::CheckTable;
using agentline::qa::Sandbox;
using agentline::qa::SandboxLimits;
using nlohmann::json;

namespace {

// The job's files in a directory of their own, run through every job check they call for.
json check_job(const std::map<std::string, std::string>& files) {
  static int counter = 0;
  const fs::path root = fs::temp_directory_path() /
                        ("agentline-job-check-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  fs::create_directories(root);
  fs::permissions(root, fs::perms::all);
  std::vector<std::string> paths;
  for (const auto& [path, content] : files) {
    fs::create_directories((root / path).parent_path());
    std::ofstream(root / path) << content;
    paths.push_back(path);
  }
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    fs::permissions(e.path(), fs::perms::others_read | fs::perms::others_exec | fs::perms::group_read,
                    fs::perm_options::add);
  }
  SandboxLimits limits;
  limits.wall = std::chrono::milliseconds(120000);
  limits.cpu_seconds = 60;
  const Sandbox sandbox(Sandbox::Mode::kBubblewrap, limits);
  EXPECT_EQ(sandbox.probe(), "") << "bubblewrap is installed by scripts/install-deps.sh";
  json all = json::array();
  for (const auto& check : CheckTable::job_defaults().for_paths(paths)) {
    const auto r = sandbox.run(check.argv, root.string());
    EXPECT_FALSE(r.infrastructure_error) << r.output;
    EXPECT_EQ(r.limit, "") << r.output;
    for (auto& d : agentline::qa::parse_job_diagnostics(check.parser, r.output, check.name)) all.push_back(d);
  }
  fs::remove_all(root);
  return all;
}

std::vector<json> about(const json& diagnostics, const std::string& file) {
  std::vector<json> out;
  for (const auto& d : diagnostics) {
    if (d["file"] == file) out.push_back(d);
  }
  return out;
}

TEST(JobChecks, APythonJobWhoseFilesPassAloneButNotTogetherNamesEachFileToFix) {
  const auto d = check_job({
      {"pkg/__init__.py", ""},
      {"pkg/core.py", "def core_info():\n    return 'core'\n"},
      {"pkg/cli.py", "from pkg.core import core_missing\n\nprint(core_missing())\n"},
      {"pkg/store.py", "from pkg.absent import load\n"},
      {"pkg/net.py", "import requests_that_nobody_installed\n"},
      {"tests/test_core.py", "from pkg.core import core_info\n\n\ndef test_core():\n    assert core_info() == 'x'\n"},
  });
  const auto cli = about(d, "pkg/cli.py");
  ASSERT_EQ(cli.size(), 1u) << d.dump(1);
  EXPECT_EQ(cli[0]["severity"], "error");
  EXPECT_EQ(cli[0]["line"], 1);
  EXPECT_NE(cli[0]["message"].get<std::string>().find("cannot import name 'core_missing'"), std::string::npos);
  EXPECT_EQ(cli[0]["related"], json::array({"pkg/core.py"})) << "the fix needs the module it imports from";
  const auto store = about(d, "pkg/store.py");
  ASSERT_EQ(store.size(), 1u) << d.dump(1);
  EXPECT_NE(store[0]["message"].get<std::string>().find("no file of the job provides it"), std::string::npos);
  const auto net = about(d, "pkg/net.py");
  ASSERT_EQ(net.size(), 1u) << d.dump(1);
  EXPECT_EQ(net[0]["severity"], "warning") << "a dependency the sandbox lacks is reported, not failed";
  EXPECT_EQ(net[0]["kind"], "missing_dependency");
  const auto test = about(d, "tests/test_core.py");
  ASSERT_EQ(test.size(), 1u) << d.dump(1);
  EXPECT_EQ(test[0]["check"], "pytest");
  EXPECT_EQ(test[0]["line"], 5);
  EXPECT_NE(test[0]["message"].get<std::string>().find("test_core failed"), std::string::npos);
  EXPECT_TRUE(about(d, "pkg/core.py").empty()) << "the module that is fine is not named";
}

TEST(JobChecks, CSourcesThatCompileAloneButDoNotLinkNameTheCaller) {
  const auto d = check_job({
      {"src/main.c", "int util_missing(void);\n\nint main(void) {\n  return util_missing();\n}\n"},
      {"src/util.c", "int util_info(void) { return 1; }\n"},
  });
  ASSERT_EQ(d.size(), 1u) << d.dump(1);
  EXPECT_EQ(d[0]["file"], "src/main.c");
  EXPECT_EQ(d[0]["check"], "link");
  EXPECT_NE(d[0]["message"].get<std::string>().find("undefined reference to `util_missing'"), std::string::npos);
  EXPECT_EQ(d[0]["line"], 4);
}

TEST(JobChecks, AJavaScriptModuleThatRequiresAMissingFileIsNamed) {
  const auto d =
      check_job({{"src/cli.js", "const core = require('./core');\n"}, {"src/other.js", "module.exports = 1;\n"}});
  ASSERT_EQ(d.size(), 1u) << d.dump(1);
  EXPECT_EQ(d[0]["file"], "src/cli.js");
  EXPECT_NE(d[0]["message"].get<std::string>().find("Cannot find module './core'"), std::string::npos);
}

TEST(JobChecks, AJobThatWorksTogetherHasNoFindings) {
  const auto d = check_job({
      {"pkg/__init__.py", ""},
      {"pkg/core.py", "def core_info():\n    return 'core'\n"},
      {"pkg/cli.py", "from pkg.core import core_info\n\n\ndef main():\n    print(core_info())\n"},
      {"tests/test_core.py",
       "from pkg.core import core_info\n\n\ndef test_core():\n    assert core_info() == 'core'\n"},
      {"src/main.c", "int util_info(void);\n\nint main(void) {\n  return util_info();\n}\n"},
      {"src/util.c", "int util_info(void) { return 0; }\n"},
      {"src/lib/shapes.c", "double area(double r) { return 3.14 * r * r; }\n"},
  });
  EXPECT_TRUE(d.empty()) << d.dump(1);
}

struct Collect : agentline::kafka::Emitter {
  std::vector<agentline::kafka::OutgoingRecord> records;
  void emit(agentline::kafka::OutgoingRecord r) override { records.push_back(std::move(r)); }
};

// A plan whose paths collide (a file and a folder of one name) cannot be assembled: the job check
// fails naming no file (the router marks the job and delivers what passed), never retried or lost.
TEST(JobChecks, AJobThatCannotBeAssembledFailsItsCheckInsteadOfWaitingForever) {
  prometheus::Registry registry;
  const auto catalog = agentline::kafka::TopicCatalog::load("");
  agentline::qa::QaWorker worker(catalog, CheckTable::defaults(), CheckTable::job_defaults(),
                                 Sandbox(Sandbox::Mode::kNone, {}), Sandbox(Sandbox::Mode::kNone, {}), registry);
  agentline::kafka::InboundRecord r;
  r.topic = catalog.topic("qa.requests");
  r.value = json{{"id", "jc-j-0"},
                 {"task_id", "j:job-check"},
                 {"job_id", "j"},
                 {"type", "JOB_CHECK_REQUESTED"},
                 {"created_at", "2026-12-02T10:00:00Z"},
                 {"payload",
                  {{"job_check_attempt", 0},
                   {"files", {{{"path", "app"}, {"content", "x"}}, {{"path", "app/main.py"}, {"content", "y"}}}}}}}
                .dump();
  Collect out;
  EXPECT_FALSE(worker.handle(r, out));
  ASSERT_EQ(out.records.size(), 1u);
  const auto result = json::parse(out.records[0].value);
  EXPECT_EQ(result["type"], "JOB_QA_FAILED");
  ASSERT_EQ(result["payload"]["diagnostics"].size(), 1u);
  EXPECT_EQ(result["payload"]["diagnostics"][0]["check"], "assemble");
  EXPECT_EQ(result["payload"]["diagnostics"][0]["file"], "");
  EXPECT_NE(result["payload"]["diagnostics"][0]["message"].get<std::string>().find("app/main.py"), std::string::npos);
}

}  // namespace
