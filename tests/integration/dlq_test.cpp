// The DLQ with the real binaries: dlq-escalator stores records of every dialect (Agentline,
// Spring Kafka, Kafka Connect), escalates each, and sends one digest per window; then the
// whole pipeline, where bad tasks, a task that never passes QA and refused uploads land in
// the store with their reasons, replay brings the uploads through once the target is fixed,
// and the loop guard stops a record that fails every time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "broker_fixture.h"
#include "fake_target.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;
using agentline::testing::eventually;
using agentline::testing::FakeTarget;
using agentline::testing::run_command;
using agentline::testing::ServiceProcess;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

class DlqTest : public ::testing::Test {
 protected:
  DlqTest() : broker_(kafka::TopicCatalog::load("")) {
    work_ =
        fs::temp_directory_path() / ("agentline-dlq-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(work_);
    fs::create_directories(work_);
    db_ = (work_ / "dlq.db").string();
  }
  ~DlqTest() override {
    if (!HasFailure()) fs::remove_all(work_);
  }
  std::unique_ptr<ServiceProcess> start(const std::string& binary, std::vector<std::string> extra = {},
                                        int http_port = 0) {
    std::vector<std::string> args{
        "--bootstrap-servers",  broker_.bootstrap(),
        "--topic-prefix",       broker_.catalog().prefix(),
        "--http-port",          std::to_string(http_port ? http_port : agentline::testing::free_port()),
        "--session-timeout-ms", "6000",
        "--shutdown-grace-ms",  "3000",
        "--state-dir",          (work_ / binary).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServiceProcess>(agentline::testing::bin(binary), args);
  }
  std::string topic(const std::string& logical) const { return broker_.catalog().topic(logical); }
  // `dlq-escalator list --json` with extra filters.
  std::vector<json> list(const std::string& filters = "") {
    std::string out;
    EXPECT_EQ(run_command(agentline::testing::bin("dlq-escalator") + " list --json --include-replayed --db " + db_ +
                              " " + filters + " 2>/dev/null",
                          &out),
              0);
    std::vector<json> records;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) records.push_back(json::parse(line));
    return records;
  }
  std::map<std::string, int> reasons() {
    std::map<std::string, int> out;
    for (const auto& r : list()) out[r["reason"]]++;
    return out;
  }
  std::string replay(const std::string& args) {
    std::string out;
    run_command(agentline::testing::bin("dlq-escalator") + " replay --db " + db_ + " --bootstrap-servers " +
                    broker_.bootstrap() + " " + args + " 2>&1",
                &out);
    return out;
  }

  static inline int counter_ = 0;
  BrokerFixture broker_;
  fs::path work_;
  std::string db_;
};

kafka::OutgoingRecord agentline_dead_letter(const std::string& dlq, int i) {
  kafka::OutgoingRecord r;
  r.topic = dlq;
  r.key = "t-" + std::to_string(i);
  r.value = json{{"task_id", r.key}, {"job_id", "burst"}}.dump();
  r.headers = {{"agentline-original-topic", "agentline.tasks.submitted"},
               {"agentline-original-partition", "1"},
               {"agentline-original-offset", std::to_string(i)},
               {"agentline-error-class", i % 2 ? "schema_violation" : "unsafe_path"},
               {"agentline-error-message", "bad task " + std::to_string(i)},
               {"agentline-failed-service", "priority-assigner"}};
  return r;
}

TEST_F(DlqTest, RecordsOfEveryDialectAreStoredEscalatedAndDigestedOncePerWindow) {
  FakeTarget chat;
  auto escalator =
      start("dlq-escalator", {"--db", db_, "--digest-url", chat.url("/digest"), "--digest-window-ms", "1500"});
  std::vector<kafka::OutgoingRecord> burst;
  for (int i = 0; i < 30; ++i) burst.push_back(agentline_dead_letter(topic("dlq"), i));
  // Spring Kafka writes partition and offset as big-endian binary numbers.
  kafka::OutgoingRecord spring;
  spring.topic = topic("dlq");
  spring.key = "order-7";
  spring.value = R"({"order": 7})";
  spring.headers = {{"kafka_dlt-original-topic", "orders"},
                    {"kafka_dlt-original-partition", std::string("\0\0\0\2", 4)},
                    {"kafka_dlt-original-offset", std::string("\0\0\0\0\0\0\x01\x2c", 8)},
                    {"kafka_dlt-exception-fqcn", "org.springframework.kafka.listener.ListenerExecutionFailedException"},
                    {"kafka_dlt-exception-message", "Listener failed"},
                    {"kafka_dlt-original-consumer-group", "billing"}};
  burst.push_back(spring);
  kafka::OutgoingRecord connect;
  connect.topic = topic("dlq");
  connect.key = "row-9";
  connect.value = "not json";
  connect.headers = {{"__connect.errors.topic", "db.rows"},
                     {"__connect.errors.partition", "0"},
                     {"__connect.errors.offset", "9"},
                     {"__connect.errors.connector.name", "jdbc-sink"},
                     {"__connect.errors.exception.class.name", "org.apache.kafka.connect.errors.DataException"},
                     {"__connect.errors.exception.message", "Converting byte[] to Kafka Connect data failed"}};
  burst.push_back(connect);
  broker_.produce_batch(burst);

  ASSERT_TRUE(eventually([&] { return chat.stats()["digests"].size() >= 1; }, 20s)) << escalator->log();
  std::this_thread::sleep_for(3500ms);  // two more windows: nothing new, so no new message
  auto digests = chat.stats()["digests"];
  ASSERT_EQ(digests.size(), 1u) << "an outage of 32 records must send one message";
  EXPECT_EQ(digests[0]["agentline"]["records"], 32);
  EXPECT_EQ(digests[0]["agentline"]["by_reason"]["schema_violation"], 15);
  EXPECT_EQ(digests[0]["agentline"]["by_reason"]["unsafe_path"], 15);
  EXPECT_NE(digests[0]["text"].get<std::string>().find("32 dead-lettered records"), std::string::npos);
  EXPECT_EQ(digests[0]["blocks"][0]["type"], "header");

  const auto records = list();
  ASSERT_EQ(records.size(), 32u);
  std::map<std::string, json> by_dialect;
  for (const auto& r : records) by_dialect[r["dialect"]] = r;
  EXPECT_EQ(by_dialect["spring"]["original_topic"], "orders");
  EXPECT_EQ(by_dialect["spring"]["original_partition"], 2);
  EXPECT_EQ(by_dialect["spring"]["original_offset"], 300);
  EXPECT_EQ(by_dialect["spring"]["reason"], "ListenerExecutionFailedException");
  EXPECT_EQ(by_dialect["connect"]["original_topic"], "db.rows");
  EXPECT_EQ(by_dialect["connect"]["reason"], "DataException");
  EXPECT_EQ(by_dialect["connect"]["service"], "jdbc-sink");
  EXPECT_EQ(list("--reason unsafe_path --job burst").size(), 15u);
  EXPECT_EQ(list("--topic tasks.submitted").size(), 30u);
  EXPECT_EQ(list("--task t-3").size(), 1u);
  EXPECT_EQ(list("--since 1h").size(), 32u);
  EXPECT_EQ(list("--until 1h").size(), 0u);

  // One ESCALATED per record, for the planner.
  const auto escalations = broker_.read(topic("escalations"), 32, 20s);
  std::set<std::string> ids;
  for (const auto& r : escalations) {
    auto e = json::parse(r.value);
    EXPECT_EQ(e["type"], "ESCALATED");
    ids.insert(e["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 32u);

  // A later failure gets a message of its own.
  broker_.produce_batch({agentline_dead_letter(topic("dlq"), 99)});
  ASSERT_TRUE(eventually([&] { return chat.stats()["digests"].size() == 2; }, 20s));
  EXPECT_EQ(chat.stats()["digests"][1]["agentline"]["records"], 1);

  // A restart reads nothing twice: the store is keyed by DLQ position.
  escalator->signal(SIGKILL);
  escalator->wait(5s);
  escalator = start("dlq-escalator", {"--db", db_, "--digest-url", chat.url("/digest"), "--digest-window-ms", "1500"});
  std::this_thread::sleep_for(6s);
  EXPECT_EQ(list().size(), 33u);
  EXPECT_EQ(chat.stats()["digests"].size(), 2u);
}

TEST_F(DlqTest, AReplayOverHttpNeedsTheTokenAndProbesKeepAnsweringWhileItRuns) {
  // 10,000 records, replayed through POST /dlq/replay at 2,000 a second (about five seconds):
  // /healthz, /readyz and /metrics answer all the while (a liveness probe would otherwise kill
  // the pod mid-replay). The bound on each answer is generous on purpose; the latency itself is
  // the benchmark's.
  const auto token_file = work_ / "token";
  std::ofstream(token_file) << "s3cret\n";
  const int port = agentline::testing::free_port();
  auto escalator = start("dlq-escalator", {"--db", db_, "--api-token-file", token_file.string()}, port);
  constexpr int kRecords = 10000;
  std::vector<kafka::OutgoingRecord> burst;
  for (int i = 0; i < kRecords; ++i) burst.push_back(agentline_dead_letter(topic("dlq"), i));
  broker_.produce_batch(burst);
  auto stored = [&](const std::string& reason) {
    const auto text = agentline::testing::http_get(port, "/metrics");
    const std::string sample = "agentline_dlq_stored_records{reason=\"" + reason + "\"} ";
    const auto at = text.find(sample);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + sample.size());
  };
  ASSERT_TRUE(eventually([&] { return stored("unsafe_path") + stored("schema_violation") == kRecords; }, 120s))
      << escalator->log();
  int status = 0;
  const std::string body = R"({"reason": "unsafe_path", "rate": 1000, "limit": 100000})";
  agentline::testing::http_request(port, "POST", "/dlq/replay", body, &status);
  EXPECT_EQ(status, 401) << "no token";
  agentline::testing::http_request(port, "POST", "/dlq/replay", body, &status, {"Authorization: Bearer wrong"});
  EXPECT_EQ(status, 401) << "a wrong token";
  auto replay = std::async(std::launch::async, [&] {
    int code = 0;
    auto out =
        agentline::testing::http_request(port, "POST", "/dlq/replay", body, &code, {"Authorization: Bearer s3cret"});
    return std::make_pair(code, out);
  });
  int answered_during = 0;
  while (replay.wait_for(0ms) != std::future_status::ready) {
    for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
      const auto started = std::chrono::steady_clock::now();
      int code = 0;
      agentline::testing::http_request(port, "GET", path, "", &code);
      const auto took = std::chrono::steady_clock::now() - started;
      EXPECT_EQ(code, 200) << path << " during the replay";
      EXPECT_LT(took, agentline::testing::scaled(10s)) << path << " during the replay";
      if (replay.wait_for(0ms) != std::future_status::ready) ++answered_during;
    }
    std::this_thread::sleep_for(200ms);
  }
  const auto [code, out] = replay.get();
  ASSERT_EQ(code, 200) << out.substr(0, 500);
  auto report = json::parse(out);
  report.erase("log");
  EXPECT_EQ(report["replayed"], kRecords / 2) << report.dump();
  EXPECT_GE(answered_during, 9) << "the probes were asked while the replay ran";
}

TEST_F(DlqTest, PipelineFailuresLandWithReasonsAndReplayBringsThemThroughOnceFixed) {
  FakeTarget hook;
  hook.mode({{"status", 503}});
  auto assigner = start("priority-assigner");
  auto worker = start("dev-fix-worker");
  auto qa = start("qa-worker");
  auto router = start("router");
  auto escalator = start("dlq-escalator", {"--db", db_});
  auto uploader = start("outbox-uploader", {"--target", "webhook", "--webhook-url", hook.url("/hook"), "--max-attempts",
                                            "2", "--retry-base-ms", "100"});
  auto task = [](const std::string& id, json payload) {
    return agentline::testing::message("DEV_TASK", "j", id, payload);
  };
  broker_.produce_batch({
      {topic("tasks.submitted"), "ok-1", task("ok-1", {{"path", "a.py"}, {"description", "write a"}})},
      {topic("tasks.submitted"), "ok-2", task("ok-2", {{"path", "b.py"}, {"description", "write b"}})},
      {topic("tasks.submitted"), "ok-3", task("ok-3", {{"path", "c.md"}, {"description", "write c"}})},
      {topic("tasks.submitted"), "never",
       task("never", {{"path", "d.py"}, {"description", "broken [demo:never-passes]"}})},
      {topic("tasks.submitted"), "no-path", task("no-path", {{"description", "no path"}})},
      {topic("tasks.submitted"), "escape", task("escape", {{"path", "../x.py"}, {"description", "escape"}})},
  });
  const std::map<std::string, int> expected{
      {"schema_violation", 1}, {"unsafe_path", 1}, {"qa_failed_max", 1}, {"upload_failed", 3}};
  // `list` refuses a store that does not exist yet (exit 2); under load the escalator can take
  // seconds to create it.
  ASSERT_TRUE(eventually([&] { return fs::exists(db_); }, 30s)) << escalator->log();
  ASSERT_TRUE(eventually([&] { return reasons() == expected; }, 90s)) << json(reasons()).dump() << "\n"
                                                                      << escalator->log();
  for (const auto& r : list("--reason upload_failed")) {
    EXPECT_EQ(r["original_topic"], topic("deploy.requests"));
    EXPECT_NE(r["message"].get<std::string>().find("HTTP 503"), std::string::npos);
  }
  EXPECT_EQ(list("--reason qa_failed_max")[0]["task_id"], "never");
  EXPECT_EQ(hook.stats().value("created", -1), 0);

  // The target is fixed. A dry run sends nothing; the replay delivers each file once.
  hook.mode({{"status", 0}});
  const auto before_dry_run = broker_.read_available(topic("deploy.requests")).size();
  const auto dry = replay("--reason upload_failed --dry-run");
  EXPECT_NE(dry.find("dry run: selected 3, would replay 3"), std::string::npos) << dry;
  // A replay returns once its records are acknowledged: a dry run that sent any would show here.
  EXPECT_EQ(broker_.read_available(topic("deploy.requests")).size(), before_dry_run);
  EXPECT_EQ(hook.stats().value("created", -1), 0);
  const auto sent = replay("--reason upload_failed --rate 20");
  EXPECT_NE(sent.find("selected 3, replayed 3"), std::string::npos) << sent;
  ASSERT_TRUE(eventually([&] { return hook.stats().value("created", 0) == 3; }, 30s)) << uploader->log();
  for (const auto& r : list("--reason upload_failed")) EXPECT_EQ(r["replays"], 1);
  EXPECT_NE(replay("--reason upload_failed").find("selected 0, replayed 0"), std::string::npos) << "replayed twice";
  std::set<std::string> delivered;
  const auto stats = hook.stats();
  for (const auto& [key, item] : stats["items"].items()) delivered.insert(item["item"]["path"].get<std::string>());
  EXPECT_EQ(delivered, (std::set<std::string>{"a.py", "b.py", "c.md"}));

  // A record that fails every time: each replay comes back, and the guard stops the third.
  auto qa_failed_records = [&] { return list("--reason qa_failed_max").size(); };
  const auto first = replay("--reason qa_failed_max --max-replays 2");
  EXPECT_NE(first.find("replayed 1"), std::string::npos) << first;
  ASSERT_TRUE(eventually([&] { return qa_failed_records() == 2; }, 30s)) << router->log();
  const auto second = replay("--reason qa_failed_max --max-replays 2");
  EXPECT_NE(second.find("replayed 1"), std::string::npos) << second;
  ASSERT_TRUE(eventually([&] { return qa_failed_records() == 3; }, 30s));
  EXPECT_EQ(list("--reason qa_failed_max --task never").back()["replay_count"], 2);
  const auto third = replay("--reason qa_failed_max --max-replays 2");
  EXPECT_NE(third.find("replayed 0, refused by the loop guard 1"), std::string::npos) << third;
  ASSERT_TRUE(broker_.settled(agentline::testing::kPipelineInputs));
  EXPECT_EQ(qa_failed_records(), 3u);
}

}  // namespace
