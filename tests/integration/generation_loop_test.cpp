// The generation loop's services as real processes against a broker: dev-fix-worker with a
// fake OpenAI-compatible server on loopback (outages, 429s, hangs, rate limits, the cache,
// priorities), and qa-worker's sandbox against hostile files.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <thread>

#include "broker_fixture.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;
using agentline::testing::eventually;
using agentline::testing::http_get;
using agentline::testing::http_request;
using agentline::testing::ServiceProcess;
using nlohmann::json;

namespace {

std::string task(const std::string& id, const std::string& path, const std::string& description = "") {
  return agentline::testing::dev_task("job-1", id, path,
                                      description.empty() ? json::object() : json{{"description", description}});
}

// The values of the samples whose lines start with `prefix` (name and labels), in order.
std::vector<double> samples(int port, const std::string& prefix) {
  const std::string text = http_get(port, "/metrics");
  std::vector<double> values;
  for (std::size_t pos = 0; (pos = text.find(prefix, pos)) != std::string::npos; pos += prefix.size()) {
    if (pos != 0 && text[pos - 1] != '\n') continue;
    const auto sp = text.find(' ', pos + prefix.size() - 1);
    values.push_back(std::stod(text.substr(sp + 1, text.find('\n', sp) - sp - 1)));
  }
  return values;
}

// The first such sample's value, or -1.
double metric(int port, const std::string& prefix) {
  const auto values = samples(port, prefix);
  return values.empty() ? -1 : values.front();
}

// The sum over every series.
double metric_total(int port, const std::string& prefix) {
  const auto values = samples(port, prefix);
  return std::accumulate(values.begin(), values.end(), 0.0);
}

class FakeLlm {
 public:
  FakeLlm() {
    const std::string port_file =
        "/tmp/agentline-fake-llm-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    std::filesystem::remove(port_file);
    process_ = std::make_unique<ServiceProcess>(
        "/usr/bin/env", std::vector<std::string>{
                            "python3", agentline::testing::source_path("tests/support/fake_llm_server.py"), port_file});
    EXPECT_TRUE(eventually(
        [&] { return std::filesystem::exists(port_file) && std::filesystem::file_size(port_file) > 0; }, 10s));
    std::ifstream(port_file) >> port_;
    std::filesystem::remove(port_file);
  }
  int port() const { return port_; }
  void mode(const std::string& m, int retry_after = 1, int latency_ms = 0, int capacity = 0) {
    int status = 0;
    http_request(
        port_, "POST", "/admin/mode",
        json{{"mode", m}, {"retry_after", retry_after}, {"latency_ms", latency_ms}, {"capacity", capacity}}.dump(),
        &status);
    ASSERT_EQ(status, 200);
  }
  json stats() const { return json::parse(http_get(port_, "/admin/stats")); }
  int requests() const { return stats()["requests"].get<int>(); }

 private:
  static inline int counter_ = 0;
  std::unique_ptr<ServiceProcess> process_;
  int port_ = 0;
};

class GenerationLoopTest : public ::testing::Test {
 protected:
  GenerationLoopTest() : broker_(kafka::TopicCatalog::load("")), http_port_(agentline::testing::free_port()) {}

  std::vector<std::string> common_args() const {
    return {"--bootstrap-servers",
            broker_.bootstrap(),
            "--topic-prefix",
            broker_.catalog().prefix(),
            "--http-port",
            std::to_string(http_port_),
            "--session-timeout-ms",
            "6000",
            "--statistics-interval-ms",
            "1000",
            "--shutdown-grace-ms",
            "3000"};
  }
  std::unique_ptr<ServiceProcess> dev_fix_worker(const FakeLlm& llm, std::vector<std::string> extra) {
    auto args = common_args();
    for (const auto& a : std::vector<std::string>{"--generator", "openai", "--llm-base-url",
                                                  "http://127.0.0.1:" + std::to_string(llm.port()) + "/v1",
                                                  "--llm-timeout-ms", "1000"}) {
      args.push_back(a);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServiceProcess>(agentline::testing::bin("dev-fix-worker"), args);
  }
  std::vector<json> events(std::size_t count, std::chrono::milliseconds timeout = 30s) {
    std::vector<json> out;
    for (const auto& r : broker_.read(topic("events"), count, timeout)) out.push_back(json::parse(r.value));
    return out;
  }
  std::string topic(const std::string& logical) const { return broker_.catalog().topic(logical); }
  std::size_t dlq_size() { return broker_.read_available(topic("dlq")).size(); }

  BrokerFixture broker_;
  int http_port_;
};

TEST_F(GenerationLoopTest, OutagesOpenTheBreakerPauseTheWorkerAndNothingReachesTheDlq) {
  FakeLlm llm;
  llm.mode("503");
  auto worker = dev_fix_worker(llm, {"--breaker-minimum-calls", "3", "--breaker-window", "5", "--breaker-open-wait-ms",
                                     "2000", "--max-in-flight", "4"});
  for (int i = 0; i < 10; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));

  // 503s: the breaker opens and consumption is held.
  ASSERT_TRUE(eventually(
      [&] { return metric(http_port_, "agentline_breaker_state{breaker=\"llm-openai\",state=\"open\"}") == 1; }, 30s))
      << worker->log();
  ASSERT_TRUE(eventually([&] { return metric(http_port_, "agentline_consumer_held{") == 1; }, 10s));
  const int at_open = llm.requests();
  std::this_thread::sleep_for(5s);
  const int during = llm.requests() - at_open;
  // Within the outage only the probes reach the backend: one per open wait (2 s), not 10 tasks'
  // worth of retries.
  EXPECT_LE(during, 4) << "calls while open: " << llm.stats().dump();
  EXPECT_EQ(dlq_size(), 0u);
  int status = 0;
  http_get(http_port_, "/healthz", &status);
  EXPECT_EQ(status, 200) << "a backend outage does not make the worker unhealthy";

  // Recovery: probes succeed, the breaker closes, every task completes.
  llm.mode("ok");
  auto done = events(10, 40s);
  std::set<std::string> tasks;
  for (const auto& e : done) tasks.insert(e["task_id"].get<std::string>());
  EXPECT_EQ(tasks.size(), 10u) << worker->log();
  EXPECT_TRUE(eventually(
      [&] { return metric(http_port_, "agentline_breaker_state{breaker=\"llm-openai\",state=\"closed\"}") == 1; },
      10s));

  // A hanging backend (timeouts) opens it again; recovery again.
  llm.mode("hang");
  for (int i = 10; i < 15; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));
  ASSERT_TRUE(eventually(
      [&] { return metric(http_port_, "agentline_breaker_opened_total{breaker=\"llm-openai\"}") >= 2; }, 30s))
      << worker->log();
  llm.mode("ok");
  EXPECT_EQ(events(15, 40s).size(), 15u);

  // 429 with Retry-After: the worker backs off without counting it as a backend failure.
  const double opened = metric(http_port_, "agentline_breaker_opened_total{breaker=\"llm-openai\"}");
  llm.mode("429", 2);
  const int before_429 = llm.requests();
  for (int i = 15; i < 20; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));
  std::this_thread::sleep_for(4s);
  const int rate_limited = llm.requests() - before_429;
  EXPECT_GE(rate_limited, 1);
  EXPECT_LE(rate_limited, 8) << "Retry-After: 2 holds the calls (at most 4 in flight per 2 s)";
  llm.mode("ok");
  EXPECT_EQ(events(20, 40s).size(), 20u);
  EXPECT_EQ(metric(http_port_, "agentline_breaker_opened_total{breaker=\"llm-openai\"}"), opened)
      << "429 is not an outage";
  EXPECT_EQ(dlq_size(), 0u) << "no task was dead-lettered because of the outages";
}

TEST_F(GenerationLoopTest, TheRequestsPerMinuteLimitHolds) {
  FakeLlm llm;
  auto worker = dev_fix_worker(llm, {"--llm-requests-per-minute", "6", "--max-in-flight", "4"});
  for (int i = 0; i < 10; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));
  EXPECT_EQ(events(6, 30s).size(), 6u) << worker->log();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(llm.requests(), 6) << "the seventh call waits for the minute to pass";
  EXPECT_EQ(broker_.read_available(topic("events")).size(), 6u);
  EXPECT_EQ(metric(http_port_, "agentline_consumer_held{"), 1);
  EXPECT_EQ(dlq_size(), 0u);
}

TEST_F(GenerationLoopTest, TheTasksGeneratingAtOnceFollowWhatTheProviderTakes) {
  // The provider answers three calls at a time (200 ms each) and 429s a fourth; the worker may
  // run twelve. The adaptive limit finds about three: a fixed twelve would see 9 of 12 calls
  // refused.
  FakeLlm llm;
  llm.mode("ok", 1, 200, 3);
  auto worker = dev_fix_worker(llm, {"--max-in-flight", "12", "--batch-max-files", "1"});
  constexpr int kTasks = 60;
  for (int i = 0; i < kTasks; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));
  EXPECT_EQ(events(kTasks, 120s).size(), static_cast<std::size_t>(kTasks)) << worker->log();
  const auto stats = llm.stats();
  const int requests = stats["requests"].get<int>();
  const int refused = stats["over_capacity"].get<int>();
  EXPECT_LE(refused * 100, requests * 35) << refused << " of " << requests << " calls answered 429";
  EXPECT_GE(metric(http_port_,
                   "agentline_concurrency_limit_changes_total{limiter=\"llm-openai\",direction=\"down\","
                   "cause=\"overload\"}"),
            1)
      << "the limit probed above the provider's capacity and came back down";
  const double limit = metric(http_port_, "agentline_concurrency_limit{");
  EXPECT_GE(limit, 1);
  EXPECT_LE(limit, 6) << "near the provider's three, far from the twelve allowed";
  EXPECT_EQ(dlq_size(), 0u) << "a 429 is waited out, never a failure of the task";
}

TEST_F(GenerationLoopTest, ATenantsFloodDoesNotDelayAnotherTenantsTasks) {
  // Two calls at a time, 200 ms each: a file every 100 ms (a service time), well above the
  // consumer's fetch wait, which the trickle also waits once.
  FakeLlm llm;
  llm.mode("ok", 1, 200);
  auto worker = dev_fix_worker(llm, {"--max-in-flight", "2", "--llm-min-in-flight", "2", "--batch-max-files", "1"});
  auto tenant_task = [](const std::string& tenant, int i) {
    const std::string id = tenant + "-" + std::to_string(i);
    return kafka::OutgoingRecord{
        "",
        id,
        agentline::testing::dev_task("job-" + tenant, id, tenant + "/f" + std::to_string(i) + ".py",
                                     {{"tenant", tenant}}),
        {},
        std::nullopt};
  };
  std::vector<kafka::OutgoingRecord> flood;
  for (int i = 0; i < 120; ++i) {
    flood.push_back(tenant_task("acme", i));
    flood.back().topic = topic("tasks.normal");
  }
  broker_.produce_batch(flood);
  ASSERT_EQ(events(10, 60s).size(), 10u) << worker->log();
  const std::size_t at_arrival = broker_.read_available(topic("events")).size();
  std::vector<kafka::OutgoingRecord> trickle;
  for (int i = 0; i < 4; ++i) {
    trickle.push_back(tenant_task("globex", i));
    trickle.back().topic = topic("tasks.normal");
  }
  broker_.produce_batch(trickle);
  const auto all = events(124, 120s);
  ASSERT_EQ(all.size(), 124u) << worker->log();
  std::size_t last_globex = 0;
  int acme = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::string id = all[i]["task_id"];
    if (id.rfind("globex-", 0) == 0) last_globex = i;
    if (id.rfind("acme-", 0) == 0) ++acme;
  }
  // First come, first served would finish globex after the ~110 acme tasks still waiting; fairly,
  // its four wait for the fetch and about one acme task each.
  EXPECT_LT(last_globex, at_arrival + 20) << "globex arrived after " << at_arrival << " files";
  EXPECT_EQ(acme, 120) << "acme used the capacity globex left";
  EXPECT_EQ(dlq_size(), 0u);
}

TEST_F(GenerationLoopTest, DuringAPrimaryOutageFilesComeFromTheFallbackModelAndReturnAfter) {
  FakeLlm primary;
  FakeLlm backup;
  primary.mode("503");
  const json fallbacks = json::array(
      {{{"base_url", "http://127.0.0.1:" + std::to_string(backup.port()) + "/v1"}, {"model", "backup-model"}}});
  auto worker =
      dev_fix_worker(primary, {"--llm-model", "primary-model", "--llm-fallbacks", fallbacks.dump(),
                               "--breaker-minimum-calls", "2", "--breaker-window", "2", "--breaker-open-wait-ms",
                               "2000", "--breaker-successes", "1", "--batch-max-files", "1", "--max-in-flight", "2"});
  for (int i = 0; i < 10; ++i)
    broker_.produce(topic("tasks.normal"), "t" + std::to_string(i),
                    task("t" + std::to_string(i), "f" + std::to_string(i) + ".py"));
  const auto during = events(10, 60s);
  ASSERT_EQ(during.size(), 10u) << worker->log();
  for (const auto& e : during) {
    EXPECT_EQ(e["type"], "FILE_COMPLETED");
    EXPECT_EQ(e["payload"]["model"], "backup-model") << "every file of the outage came from the fallback";
  }
  EXPECT_LE(primary.requests(), 4) << "once its breaker opened the primary was no longer asked";
  EXPECT_EQ(metric(http_port_, "agentline_breaker_state{breaker=\"llm-openai\",state=\"open\"}"), 1);

  // The primary recovers: after the open wait a probe succeeds, and files come from it again.
  primary.mode("ok");
  bool back = false;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (std::size_t n = 11; !back && std::chrono::steady_clock::now() < deadline; ++n) {
    const std::string id = "r" + std::to_string(n);
    broker_.produce(topic("tasks.normal"), id, task(id, id + ".py"));
    const auto all = events(n, 30s);
    ASSERT_EQ(all.size(), n) << worker->log();
    back = all.back()["payload"]["model"] == "primary-model";
    if (!back) std::this_thread::sleep_for(200ms);  // one task per 200 ms until the probe
  }
  EXPECT_TRUE(back) << "files came from the primary again" << worker->log();
  EXPECT_EQ(dlq_size(), 0u) << "no file failed because its primary was down";
}

TEST_F(GenerationLoopTest, ARepeatedTaskIsServedFromTheCache) {
  FakeLlm llm;
  auto worker = dev_fix_worker(llm, {});
  broker_.produce(topic("tasks.normal"), "a", task("a", "lib/util.py", "helpers"));
  ASSERT_EQ(events(1).size(), 1u) << worker->log();
  broker_.produce(topic("tasks.normal"), "b", task("b", "lib/util.py", "helpers"));
  auto all = events(2);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[0]["payload"]["cached"].get<bool>());
  EXPECT_TRUE(all[1]["payload"]["cached"].get<bool>());
  EXPECT_EQ(all[0]["payload"]["content"], all[1]["payload"]["content"]);
  EXPECT_EQ(all[0]["payload"]["content_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(llm.requests(), 1);
  const json stats = json::parse(http_get(http_port_, "/stats"));
  EXPECT_EQ(stats["cache"]["hits"], 1);
  int status = 0;
  const std::string inv =
      http_request(http_port_, "POST", "/cache/invalidate", R"({"namespace":"openai:gpt-4o-mini"})", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(inv)["invalidated"], 1);
}

TEST_F(GenerationLoopTest, CriticalTasksOvertakeABacklogOfLowOnes) {
  FakeLlm llm;
  llm.mode("ok", 1, 100);  // 100 ms per call
  std::vector<kafka::OutgoingRecord> batch;
  for (int i = 0; i < 60; ++i)
    batch.push_back({topic("tasks.low"),
                     "l" + std::to_string(i),
                     task("l" + std::to_string(i), "low" + std::to_string(i) + ".py"),
                     {},
                     {}});
  broker_.produce_batch(batch);
  batch.clear();
  for (int i = 0; i < 5; ++i)
    batch.push_back({topic("tasks.critical"),
                     "c" + std::to_string(i),
                     task("c" + std::to_string(i), "crit" + std::to_string(i) + ".py"),
                     {},
                     {}});
  broker_.produce_batch(batch);
  auto worker = dev_fix_worker(llm, {"--max-in-flight", "2"});
  auto done = events(65, 60s);
  ASSERT_EQ(done.size(), 65u) << worker->log();
  std::vector<std::size_t> positions;
  for (std::size_t i = 0; i < done.size(); ++i) {
    if (done[i]["task_id"].get<std::string>()[0] == 'c') positions.push_back(i);
  }
  ASSERT_EQ(positions.size(), 5u);
  // FIFO would finish them last (positions 60..64); the priority scheduler takes them as soon
  // as they are fetched.
  EXPECT_LT(positions.back(), 15u) << "critical tasks finished at positions " << ::testing::PrintToString(positions);
}

TEST_F(GenerationLoopTest, TheSandboxContainsHostileFiles) {
  // A listener on the host's loopback: the sandbox has no network, so nothing may reach it.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(listener, 8);
  const int port = ntohs(addr.sin_port);
  const std::string marker = "/tmp/agentline-escaped-" + std::to_string(::getpid());

  const std::string table = "/tmp/agentline-qa-table-" + std::to_string(::getpid()) + ".json";
  std::ofstream(table) << R"({".py": {"name": "run_python", "argv": ["python3", "{file}"], "parser": "python"},
                              ".sh": {"name": "run_shell", "argv": ["bash", "{file}"], "parser": "bash"}})";
  auto args = common_args();
  for (const auto& a :
       std::vector<std::string>{"--checks", table, "--check-cpu-seconds", "2", "--check-wall-ms", "5000",
                                "--check-memory-mb", "512", "--check-processes", "32", "--max-in-flight", "3"}) {
    args.push_back(a);
  }
  ServiceProcess qa(agentline::testing::bin("qa-worker"), args);
  const std::map<std::string, std::string> files{
      {"net.py", "import socket\nsocket.create_connection(('127.0.0.1', " + std::to_string(port) + "), timeout=2)\n"},
      {"escape.py", "open('" + marker + "', 'w').write('x')\nopen('/usr/pwned', 'w').write('x')\n"},
      // The foreground variant: every level waits for its pipeline, so the script cannot exit 0
      // before the process limit stops it. (The classic `:|:&` variant may exit 0 before its
      // orphans hit the limit; they die with the sandbox's pid namespace either way.)
      {"forkbomb.sh", ":(){ :|: ; };:\n"},
      {"loop.py", "while True:\n    pass\n"},
      {"hog.py", "blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n"},
      {"fine.py", "print('hello')\n"}};
  for (const auto& [name, content] : files) {
    broker_.produce(topic("qa.requests"), name,
                    agentline::testing::message("FILE_COMPLETED", "job-1", name,
                                                {{"path", "src/" + name}, {"content", content}}, "fc"));
  }
  auto results = events(files.size(), 90s);
  ASSERT_EQ(results.size(), files.size()) << qa.log();
  std::map<std::string, json> by_task;
  for (const auto& r : results) by_task[r["task_id"]] = r;
  EXPECT_EQ(by_task["fine.py"]["type"], "QA_PASSED");
  for (const char* hostile : {"net.py", "escape.py", "forkbomb.sh", "loop.py", "hog.py"}) {
    EXPECT_EQ(by_task[hostile]["type"], "QA_FAILED") << hostile << ": " << by_task[hostile].dump();
    EXPECT_FALSE(by_task[hostile]["payload"]["diagnostics"].empty()) << hostile;
  }
  auto first_message = [&](const char* t) {
    return by_task[t]["payload"]["diagnostics"][0]["message"].get<std::string>();
  };
  EXPECT_NE(first_message("loop.py").find("limit"), std::string::npos) << first_message("loop.py");
  // Contained by the memory limit, or — when zero-filling its blocks is slow on a loaded machine
  // (a CI run saw it) — by the CPU limit first: either way a limit stopped it.
  EXPECT_TRUE(first_message("hog.py").find("memory") != std::string::npos ||
              first_message("hog.py").find("MemoryError") != std::string::npos ||
              first_message("hog.py").find("cpu_time limit") != std::string::npos)
      << first_message("hog.py");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a write escaped the sandbox";
  EXPECT_FALSE(std::filesystem::exists("/usr/pwned"));
  // Nothing connected to the host's listener.
  timeval tv{0, 0};
  fd_set set;
  FD_ZERO(&set);
  FD_SET(listener, &set);
  EXPECT_EQ(::select(listener + 1, &set, nullptr, nullptr, &tv), 0) << "the sandbox reached the host network";
  ::close(listener);
  EXPECT_TRUE(eventually([] { return std::system("pgrep -u 65534 >/dev/null") != 0; }, 10s))
      << "sandboxed processes outlived their check";
  EXPECT_TRUE(qa.running());
  int status = 0;
  http_get(http_port_, "/readyz", &status);
  EXPECT_EQ(status, 200) << "the worker stays healthy";
  EXPECT_EQ(dlq_size(), 0u);
  std::filesystem::remove(table);
}

}  // namespace

namespace {

TEST_F(GenerationLoopTest, SmallFilesOfAJobShareOneLlmCall) {
  FakeLlm llm;
  auto worker = dev_fix_worker(llm, {"--batch-max-files", "4", "--batch-linger-ms", "1500", "--max-in-flight", "8"});
  std::vector<kafka::OutgoingRecord> batch;
  for (int i = 0; i < 4; ++i) {
    json t = json::parse(task("s" + std::to_string(i), "pkg/small" + std::to_string(i) + ".py"));
    t["payload"]["max_tokens"] = 256;
    batch.push_back({topic("tasks.normal"), "s" + std::to_string(i), t.dump(), {}, {}});
  }
  broker_.produce_batch(batch);
  auto done = events(4, 30s);
  ASSERT_EQ(done.size(), 4u) << worker->log();
  for (const auto& e : done) {
    // Each file got its own block back out of the shared reply.
    EXPECT_NE(e["payload"]["content"].get<std::string>().find(e["payload"]["path"].get<std::string>()),
              std::string::npos)
        << e.dump();
  }
  EXPECT_LT(llm.requests(), 4) << llm.stats().dump();
  EXPECT_GE(metric(http_port_, "agentline_llm_batched_files_total"), 2);
}

}  // namespace

// Three dev-fix-worker replicas share the tasks; one is SIGKILLed mid-flow and never comes
// back. Its partitions move to the other two (after the session timeout, under either group
// protocol: the embedded broker and the kafka tier's Kafka hold consumer-protocol members to
// the same 6 s), and every task still reaches the filesystem target exactly once: the work it
// had in flight is generated again by its successor and absorbed downstream.
TEST_F(GenerationLoopTest, AKilledReplicasPartitionsMoveToTheOthersAndEveryFileArrivesOnce) {
  FakeLlm llm;
  llm.mode("ok", 1, 150);
  const auto work = std::filesystem::temp_directory_path() / ("agentline-member-kill-" + std::to_string(::getpid()));
  std::filesystem::remove_all(work);
  auto service = [&](const std::string& binary, const std::string& name, std::vector<std::string> extra, int port) {
    auto args = common_args();
    args[5] = std::to_string(port);  // --http-port
    args.insert(args.end(), {"--state-dir", (work / name).string()});
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServiceProcess>(agentline::testing::bin(binary), args);
  };
  // Where the work stopped, if it does: each service's group state and what reached each topic.
  std::vector<std::pair<std::string, int>> all_ports;
  auto port_of = [&](const std::string& name) {
    all_ports.emplace_back(name, agentline::testing::free_port());
    return all_ports.back().second;
  };
  auto assigner = service("priority-assigner", "pa", {}, port_of("priority-assigner"));
  auto qa = service("qa-worker", "qa", {}, port_of("qa-worker"));
  auto router = service("router", "router", {}, port_of("router"));
  auto outbox = service(
      "outbox-uploader", "outbox",
      {"--target", "filesystem", "--output-root", (work / "out").string(), "--db", (work / "outbox.db").string()},
      port_of("outbox-uploader"));
  auto where = [&] {
    std::string text;
    for (const auto& [name, port] : all_ports) {
      text += name + ": assigned " + std::to_string(metric(port, "agentline_consumer_assigned_partitions{")) +
              ", consumed " + std::to_string(metric_total(port, "agentline_records_consumed_total{")) +
              ", rebalances " + std::to_string(metric(port, "agentline_rebalances_total{")) + "\n";
    }
    for (const char* t : {"tasks.submitted", "qa.requests", "events", "deploy.requests"})
      text += std::string(t) + ": " + std::to_string(broker_.read_available(topic(t)).size()) + " records\n";
    return text;
  };
  std::vector<int> ports;
  std::vector<std::unique_ptr<ServiceProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    ports.push_back(port_of("dev-fix-worker " + std::to_string(i)));
    workers.push_back(
        service("dev-fix-worker", "w" + std::to_string(i),
                {"--generator", "openai", "--llm-base-url", "http://127.0.0.1:" + std::to_string(llm.port()) + "/v1",
                 "--llm-timeout-ms", "5000", "--max-in-flight", "2", "--batch-max-files", "1"},
                ports.back()));
  }
  auto rebalances = [&](int port) { return metric(port, "agentline_rebalances_total{"); };
  // Every replica has joined before the work starts.
  ASSERT_TRUE(eventually(
      [&] {
        for (int p : ports)
          if (metric(p, "agentline_records_consumed_total{") < 0 || rebalances(p) < 1) return false;
        return true;
      },
      60s));

  constexpr int kTasks = 60;
  std::vector<kafka::OutgoingRecord> tasks;
  for (int i = 0; i < kTasks; ++i) {
    const std::string id = "k" + std::to_string(i);
    tasks.push_back({topic("tasks.submitted"), id, task(id, "pkg/mod_" + std::to_string(i) + ".py")});
  }
  broker_.produce_batch(tasks);
  // The kill lands on a replica while it is generating (which replicas own the partitions the
  // tasks land on is the group's choice).
  int victim = -1;
  ASSERT_TRUE(eventually(
      [&] {
        for (int i = 0; i < 3 && victim < 0; ++i)
          if (metric(ports[i], "agentline_records_in_flight{") >= 1) victim = i;
        return victim >= 0;
      },
      60s))
      << workers[0]->log();
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i)
    if (i != victim) survivors.push_back(i);
  auto survivors_rebalances = [&] { return rebalances(ports[survivors[0]]) + rebalances(ports[survivors[1]]); };
  const double before = survivors_rebalances();
  workers[victim]->signal(SIGKILL);
  ASSERT_TRUE(workers[victim]->wait(5s).has_value());

  const auto out = work / "out" / "job-1" / "pkg";
  auto delivered = [&] {
    int n = 0;
    for (int i = 0; i < kTasks; ++i) n += std::filesystem::exists(out / ("mod_" + std::to_string(i) + ".py")) ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(eventually([&] { return delivered() == kTasks; }, 180s))
      << delivered() << " of " << kTasks << " delivered\n"
      << where() << workers[survivors[0]]->log();
  EXPECT_GT(survivors_rebalances(), before) << "no survivor saw the partitions move";
  auto groups = agentline::testing::kPipelineInputs;
  groups.erase("dlq-escalator");
  ASSERT_TRUE(broker_.settled(groups)) << "a late duplicate would have been produced once this holds";

  std::map<std::string, int> uploaded;
  for (const auto& r : broker_.read_available(topic("events"))) {
    const auto e = json::parse(r.value, nullptr, false);
    if (e.is_object() && e.value("type", "") == "UPLOADED") ++uploaded[e.value("task_id", "")];
  }
  EXPECT_EQ(uploaded.size(), static_cast<std::size_t>(kTasks));
  for (const auto& [id, n] : uploaded) EXPECT_EQ(n, 1) << id << " uploaded " << n << " times";
  // Generated files (qa.requests): every task at least once; what the killed replica had in
  // flight may have been generated twice, and was absorbed above.
  std::set<std::string> generated;
  for (const auto& r : broker_.read_available(topic("qa.requests"))) {
    const auto e = json::parse(r.value, nullptr, false);
    if (e.is_object()) generated.insert(e.value("task_id", ""));
  }
  EXPECT_EQ(generated.size(), static_cast<std::size_t>(kTasks));
  std::filesystem::remove_all(work);
}
