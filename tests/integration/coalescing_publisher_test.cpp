// The router's coalesced job progress (services/router/coalescing_publisher.h) on a broker: the
// latest record of each key goes out, in the order the keys came, and every hold is dropped once
// its record is acknowledged, or failed first when it could not be delivered.
#include "coalescing_publisher.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>

#include "broker_fixture.h"

using namespace std::chrono_literals;
using namespace agentline;

namespace {

const char* kCatalog = R"({"prefix": "cp.", "topics": [{"name": "progress", "partitions": 1}], "dlq": "progress"})";

// Counts what happens to the holds handed in.
struct Holds {
  std::atomic<int> dropped{0};
  std::atomic<int> failed{0};
  struct Counted : kafka::Emitter::Hold {
    explicit Counted(Holds& h) : holds(h) {}
    ~Counted() override { ++holds.dropped; }
    void fail() override { ++holds.failed; }
    Holds& holds;
  };
  std::shared_ptr<kafka::Emitter::Hold> make() { return std::make_shared<Counted>(*this); }
};

kafka::OutgoingRecord record(const std::string& topic, const std::string& key, const std::string& value) {
  kafka::OutgoingRecord r;
  r.topic = topic;
  r.key = key;
  r.value = value;
  return r;
}

}  // namespace

TEST(CoalescingPublisherTest, TheLatestRecordOfEachKeyGoesOutInTheOrderTheKeysCameAndReleasesEveryHold) {
  agentline::testing::BrokerFixture broker(kafka::TopicCatalog::parse(kCatalog));
  const std::string topic = broker.catalog().topic("progress");
  prometheus::Registry registry;
  Holds holds;
  {
    router::CoalescingPublisher publisher(kafka::KafkaSettings{broker.bootstrap(), {}, ""}, 1h, registry);
    for (int version = 1; version <= 3; ++version) {
      publisher.publish(record(topic, "job", "summary v" + std::to_string(version)), holds.make());
      publisher.publish(record(topic, "job/f" + std::to_string(version) + ".py", "file"), holds.make());
    }
    kafka::OutgoingRecord gone = record(topic, "job/old.py", "");
    gone.tombstone = true;
    publisher.publish(std::move(gone), nullptr);
    EXPECT_EQ(publisher.flush(), 5u) << "one summary, three files, one tombstone";
    ASSERT_TRUE(agentline::testing::eventually([&] { return holds.dropped.load() == 6; }, 20s));
    EXPECT_EQ(holds.failed.load(), 0);
    // What waits when the publisher goes is produced before it goes.
    publisher.publish(record(topic, "job", "summary v4"), holds.make());
  }
  EXPECT_EQ(holds.dropped.load(), 7);
  const auto out = broker.read(topic, 6, 20s);
  ASSERT_EQ(out.size(), 6u);
  std::vector<std::string> keys;
  for (const auto& r : out) keys.push_back(r.key.value_or(""));
  EXPECT_EQ(keys, (std::vector<std::string>{"job", "job/f1.py", "job/f2.py", "job/f3.py", "job/old.py", "job"}));
  EXPECT_EQ(out[0].value, "summary v3") << "v1 and v2 were replaced before they went out";
  EXPECT_EQ(out[5].value, "summary v4");
}

TEST(CoalescingPublisherTest, ARecordThatCannotBeDeliveredFailsTheHoldsOfEveryStepItCarried) {
  agentline::testing::BrokerFixture broker(kafka::TopicCatalog::parse(kCatalog));
  const std::string topic = broker.catalog().topic("progress");
  prometheus::Registry registry;
  Holds holds;
  router::CoalescingPublisher publisher(kafka::KafkaSettings{broker.bootstrap(), {}, ""}, 1h, registry);
  publisher.publish(record(topic, "job", "small"), holds.make());
  publisher.publish(record(topic, "job", std::string(5 * 1024 * 1024, 'x')), holds.make());  // over 4 MiB
  publisher.flush();
  ASSERT_TRUE(agentline::testing::eventually([&] { return holds.dropped.load() == 2; }, 20s));
  EXPECT_EQ(holds.failed.load(), 2) << "both steps' inputs stay uncommitted";
}
