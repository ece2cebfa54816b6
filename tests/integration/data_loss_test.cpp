// Records removed before a group read them (retention, DeleteRecords, the embedded broker's
// cap) are detected, counted and make the service not ready. Needs DeleteRecords, which the
// embedded broker lacks: this suite runs in the real-Kafka tier only (see tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>
#include <thread>

#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "broker_fixture.h"
#include "kafka/handles.h"

using namespace std::chrono_literals;
using namespace agentline;

namespace {

const char* kCatalog =
    R"({"prefix": "loss.", "topics": [{"name": "in", "partitions": 1}, {"name": "dlq", "partitions": 1}],
                          "dlq": "dlq"})";

// Deletes every record of partition 0 of `topic` before `offset` (the log start moves there).
void delete_records_before(const std::string& bootstrap, const std::string& topic, std::int64_t offset) {
  using namespace kafka::detail;
  auto rk = make_client(RD_KAFKA_PRODUCER, make_conf(kafka::KafkaSettings{bootstrap, {}, ""}, {}, {}));
  PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0)->offset = offset;
  rd_kafka_DeleteRecords_t* del = rd_kafka_DeleteRecords_new(list.get());
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteRecords(rk.get(), &del, 1, nullptr, queue.get());
  rd_kafka_DeleteRecords_destroy(del);
  EventPtr event(rd_kafka_queue_poll(queue.get(), 30000));
  ASSERT_TRUE(event);
  ASSERT_EQ(rd_kafka_event_error(event.get()), RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_event_error_string(event.get());
}

}  // namespace

TEST(DataLoss, RecordsDeletedBeforeTheGroupReadThemAreCountedAndTurnTheServiceNotReady) {
  ASSERT_FALSE(agentline::testing::real_kafka_state().empty()) << "this test needs the real-Kafka tier";
  agentline::testing::BrokerFixture broker(kafka::TopicCatalog::parse(kCatalog));
  const std::string in = broker.catalog().topic("in");
  kafka::KafkaSettings settings{broker.bootstrap(), {}, ""};

  auto run_until = [&](const std::function<bool(observability::HealthState&, prometheus::Registry&)>& done) {
    auto producer = std::make_shared<kafka::Producer>(settings, "loss-test");
    auto registry = std::make_shared<prometheus::Registry>();
    auto health = std::make_shared<observability::HealthState>();
    kafka::ConsumerOptions options;
    options.group_protocol = agentline::testing::group_protocol();
    options.service = "loss-test";
    options.group_id = "loss-test";
    options.topics = {in};
    options.commit_interval = 100ms;
    kafka::ConsumerRuntime runtime(settings, options, broker.catalog(), producer, registry, health);
    kafka::Handler handler = [](const kafka::InboundRecord&, kafka::Emitter&) -> std::optional<kafka::Failure> {
      return std::nullopt;
    };
    std::thread t([&] { runtime.run(handler); });
    bool ok = agentline::testing::eventually([&] { return done(*health, *registry); }, 60s);
    runtime.request_stop();
    t.join();
    return ok;
  };

  for (int i = 0; i < 10; ++i) broker.produce(in, "k", "v" + std::to_string(i));
  ASSERT_TRUE(run_until([&](auto&, auto&) { return broker.lag("loss-test", in) == 0; }));

  // While the group is away, ten more records arrive and the first five of them are deleted.
  for (int i = 10; i < 20; ++i) broker.produce(in, "k", "v" + std::to_string(i));
  delete_records_before(broker.bootstrap(), in, 15);

  std::string metrics, reasons;
  ASSERT_TRUE(run_until([&](observability::HealthState& health, prometheus::Registry& registry) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry.Collect());
    metrics = out.str();
    reasons = health.not_ready_reasons();
    return metrics.find("agentline_consumer_records_lost_total{service=\"loss-test\",topic=\"" + in + "\"} 5") !=
               std::string::npos &&
           !health.ready();
  })) << metrics
      << "\nreasons: " << reasons;
  EXPECT_NE(reasons.find("5 records lost on " + in + "[0]"), std::string::npos) << reasons;
}
