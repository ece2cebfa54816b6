// priority-assigner as a real process against the embedded broker over TCP.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "agentline/kafka/dead_letter.h"
#include "broker_fixture.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;
using agentline::testing::ServiceProcess;
using nlohmann::json;

namespace {

std::string task(const std::string& id, const std::string& path, const std::string& type = "DEV_TASK",
                 const std::string& priority = "") {
  json payload = {{"path", path}, {"description", "write " + path}};
  if (!priority.empty()) payload["priority"] = priority;
  return agentline::testing::message(type, "job-1", id, payload, "msg");
}

class PriorityAssignerTest : public ::testing::Test {
 protected:
  PriorityAssignerTest() : broker_(kafka::TopicCatalog::load("")), http_port_(agentline::testing::free_port()) {}

  std::unique_ptr<ServiceProcess> start() {
    return std::make_unique<ServiceProcess>(
        agentline::testing::bin("priority-assigner"),
        std::vector<std::string>{"--bootstrap-servers", broker_.bootstrap(), "--http-port", std::to_string(http_port_),
                                 "--session-timeout-ms", "6000", "--statistics-interval-ms", "1000",
                                 "--shutdown-grace-ms", "5000", "--topic-prefix", broker_.catalog().prefix()});
  }
  std::string topic(const std::string& logical) { return broker_.catalog().topic(logical); }

  // Unique task ids across the four priority topics and tasks.fix.
  std::set<std::string> routed_task_ids(std::size_t expected, std::chrono::milliseconds timeout) {
    std::set<std::string> ids;
    auto deadline = std::chrono::steady_clock::now() + agentline::testing::scaled(timeout);
    while (ids.size() < expected && std::chrono::steady_clock::now() < deadline) {
      ids.clear();
      for (const char* t : {"tasks.critical", "tasks.high", "tasks.normal", "tasks.low", "tasks.fix"}) {
        for (const auto& r : broker_.read_available(topic(t))) ids.insert(r.key.value_or(""));
      }
      if (ids.size() < expected) std::this_thread::sleep_for(500ms);
    }
    return ids;
  }

  BrokerFixture broker_;
  int http_port_;
};

std::string header(const kafka::InboundRecord& r, std::string_view key) {
  auto v = r.header(key);
  return v ? std::string(*v) : "<missing>";
}

}  // namespace

TEST_F(PriorityAssignerTest, TasksReachTheirPriorityTopics) {
  const std::string in = topic("tasks.submitted");
  broker_.produce(in, "t-main", task("t-main", "src/main.py"),
                  {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  broker_.produce(in, "t-model", task("t-model", "app/models/user.py"));
  broker_.produce(in, "t-svc", task("t-svc", "app/services/billing.py"));
  broker_.produce(in, "t-test", task("t-test", "tests/test_billing.py"));
  broker_.produce(in, "t-fix", task("t-fix", "tests/test_billing.py", "FIX_TASK"));
  broker_.produce(in, "t-explicit", task("t-explicit", "src/main.py", "DEV_TASK", "low"));
  auto service = start();

  auto critical = broker_.read(topic("tasks.critical"), 1);
  auto high = broker_.read(topic("tasks.high"), 1);
  auto normal = broker_.read(topic("tasks.normal"), 1);
  auto low = broker_.read(topic("tasks.low"), 2);
  auto fix = broker_.read(topic("tasks.fix"), 1);
  ASSERT_EQ(critical.size(), 1u) << service->log();
  EXPECT_EQ(critical[0].key, "t-main");
  auto routed = json::parse(critical[0].value);
  EXPECT_EQ(routed["payload"]["priority"], "critical");
  EXPECT_EQ(routed["payload"]["priority_rule"], "entry-points-config-core");
  EXPECT_EQ(header(critical[0], "agentline-schema"), "agentline.task.v1");
  EXPECT_EQ(header(critical[0], "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
      << "trace context is kept";
  ASSERT_EQ(high.size(), 1u);
  EXPECT_EQ(high[0].key, "t-model");
  ASSERT_EQ(normal.size(), 1u);
  EXPECT_EQ(normal[0].key, "t-svc");
  ASSERT_EQ(low.size(), 2u);
  std::set<std::string> low_ids{*low[0].key, *low[1].key};
  EXPECT_EQ(low_ids, (std::set<std::string>{"t-test", "t-explicit"})) << "an explicit priority wins over the rules";
  ASSERT_EQ(fix.size(), 1u);
  EXPECT_EQ(fix[0].key, "t-fix") << "fix tasks always go to tasks.fix";

  std::string metrics;
  ASSERT_TRUE(agentline::testing::eventually(
      [&] {
        metrics = agentline::testing::http_get(http_port_, "/metrics");
        return metrics.find("agentline_tasks_prioritized_total{priority=\"low\"} 2") != std::string::npos;
      },
      10s))
      << metrics;
  EXPECT_NE(metrics.find("agentline_tasks_prioritized_total{priority=\"fix\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("agentline_tasks_prioritized_total{priority=\"critical\"} 1"), std::string::npos);
  EXPECT_TRUE(agentline::testing::eventually(
      [&] {
        return agentline::testing::http_get(http_port_, "/metrics").find("agentline_consumer_lag_messages{") !=
               std::string::npos;
      },
      10s))
      << "librdkafka statistics become consumer-lag gauges";
  int status = 0;
  agentline::testing::http_get(http_port_, "/healthz", &status);
  EXPECT_EQ(status, 200);
  agentline::testing::http_get(http_port_, "/readyz", &status);
  EXPECT_EQ(status, 200);
}

TEST_F(PriorityAssignerTest, BadInputReachesTheDlqWithItsReasonAndTheServiceKeepsRunning) {
  const std::string in = topic("tasks.submitted");
  json missing_path = json::parse(task("t-schema", "x.py"));
  missing_path["payload"].erase("path");
  broker_.produce(in, "t-json", "{\"task_id\": \"t-json\", oops");
  broker_.produce(in, "t-schema", missing_path.dump());
  broker_.produce(in, "t-path", task("t-path", "../../etc/passwd"));
  broker_.produce(in, "t-ok", task("t-ok", "app/models/order.py"));
  auto service = start();

  auto dlq = broker_.read(topic("dlq"), 3);
  ASSERT_EQ(dlq.size(), 3u) << service->log();
  std::map<std::string, kafka::InboundRecord> by_key;
  for (auto& r : dlq) by_key[r.key.value_or("")] = r;
  namespace h = kafka::headers;
  EXPECT_EQ(header(by_key["t-json"], h::kErrorClass), "malformed_json");
  EXPECT_EQ(header(by_key["t-schema"], h::kErrorClass), "schema_violation");
  EXPECT_NE(header(by_key["t-schema"], h::kErrorMessage).find("path"), std::string::npos)
      << header(by_key["t-schema"], h::kErrorMessage);
  EXPECT_EQ(header(by_key["t-path"], h::kErrorClass), "unsafe_path");
  EXPECT_NE(header(by_key["t-path"], h::kErrorMessage).find("../../etc/passwd"), std::string::npos);
  for (auto& [key, r] : by_key) {
    EXPECT_EQ(header(r, h::kOriginalTopic), in) << key;
    EXPECT_EQ(header(r, h::kConsumerGroup), "priority-assigner") << key;
    EXPECT_EQ(header(r, h::kFailedService), "priority-assigner") << key;
    EXPECT_EQ(header(r, h::kAttempt), "1") << key;
    EXPECT_NE(header(r, h::kOriginalOffset), "<missing>") << key;
    EXPECT_NE(header(r, h::kOriginalPartition), "<missing>") << key;
    EXPECT_NE(header(r, h::kOriginalTimestamp), "<missing>") << key;
  }
  EXPECT_EQ(by_key["t-json"].value, "{\"task_id\": \"t-json\", oops") << "the original bytes are kept";

  auto high = broker_.read(topic("tasks.high"), 1);
  ASSERT_EQ(high.size(), 1u);
  EXPECT_EQ(high[0].key, "t-ok");
  EXPECT_TRUE(service->running()) << "bad input never crashes the service";
  std::string metrics;
  EXPECT_TRUE(agentline::testing::eventually(
      [&] {
        metrics = agentline::testing::http_get(http_port_, "/metrics");
        return metrics.find(
                   "agentline_dead_letters_total{service=\"priority-assigner\",error_class=\"unsafe_path\"} 1") !=
               std::string::npos;
      },
      10s))
      << metrics;
}

TEST_F(PriorityAssignerTest, SigkillMidBatchThenRestartLosesNoTask) {
  const std::string in = topic("tasks.submitted");
  const int total = 3000;
  std::vector<kafka::OutgoingRecord> batch;
  for (int i = 0; i < total; ++i) {
    std::string id = "t-" + std::to_string(i);
    batch.push_back(
        {in, id, task(id, "src/mod" + std::to_string(i % 17) + "/file" + std::to_string(i) + ".py"), {}, {}});
  }
  broker_.produce_batch(batch);
  auto first = start();
  ASSERT_TRUE(agentline::testing::eventually(
      [&] {
        return broker_.read(topic("tasks.critical"), 1, 200ms).size() +
                   broker_.read(topic("tasks.normal"), 1, 200ms).size() >
               0;
      },
      30s))
      << first->log();
  first->signal(SIGKILL);
  EXPECT_EQ(first->wait(5s), -SIGKILL);

  auto second = start();
  auto ids = routed_task_ids(total, 90s);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(total)) << "every task arrives after the crash\n" << second->log();
  EXPECT_TRUE(agentline::testing::eventually([&] { return broker_.lag("priority-assigner", in) == 0; }, 30s));
}

TEST_F(PriorityAssignerTest, SigtermExitsCleanlyWithOffsetsCommitted) {
  const std::string in = topic("tasks.submitted");
  const int total = 500;
  std::vector<kafka::OutgoingRecord> batch;
  for (int i = 0; i < total; ++i) {
    std::string id = "t-" + std::to_string(i);
    batch.push_back({in, id, task(id, "app/services/s" + std::to_string(i) + ".py"), {}, {}});
  }
  broker_.produce_batch(batch);
  auto service = start();
  auto routed = broker_.read(topic("tasks.normal"), total, 60s);
  ASSERT_EQ(routed.size(), static_cast<std::size_t>(total)) << service->log();
  service->signal(SIGTERM);
  EXPECT_EQ(service->wait(20s), 0) << service->log();
  EXPECT_EQ(broker_.lag("priority-assigner", in), 0) << "everything routed is committed before exit";

  // A restart finds nothing to redo: no task is routed twice.
  auto again = start();
  broker_.produce(in, "t-last", task("t-last", "app/services/last.py"));
  auto after = broker_.read(topic("tasks.normal"), total + 1, 60s);
  EXPECT_EQ(after.size(), static_cast<std::size_t>(total + 1)) << again->log();
  // Offsets are committed only after the outputs are acknowledged: once the group has
  // committed everything, any duplicate of the restart would already be on the topic.
  EXPECT_TRUE(agentline::testing::eventually([&] { return broker_.lag("priority-assigner", in) == 0; }, 30s));
  EXPECT_EQ(broker_.read_available(topic("tasks.normal")).size(), static_cast<std::size_t>(total + 1))
      << "no duplicates after a clean restart";
}
