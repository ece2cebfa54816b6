#include "kafka/consumer_statistics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

namespace agentline::kafka::detail {
namespace {

double lag_of(prometheus::Registry& registry, const std::string& topic, const std::string& partition) {
  for (const auto& family : registry.Collect()) {
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      if (labels["topic"] == topic && labels["partition"] == partition) return m.gauge.value;
    }
  }
  return -1;
}

TEST(ConsumerStatisticsTest, EachPartitionsLagBecomesAGaugeAndABrokerUpIsSeen) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildGauge().Name("lag").Help("lag").Register(registry);
  ConsumerStatistics statistics(family);
  const std::string bootstrap_only =
      R"({"brokers": {"localhost:9092/bootstrap": {"nodeid": -1, "state": "UP"}},
          "topics": {"t": {"partitions": {"0": {"consumer_lag": 12}, "1": {"consumer_lag": -1},
                                          "-1": {"consumer_lag": 99}}}}})";
  EXPECT_FALSE(statistics.apply(bootstrap_only)) << "a bootstrap entry is not a broker of the cluster";
  EXPECT_EQ(lag_of(registry, "t", "0"), 12);
  EXPECT_EQ(lag_of(registry, "t", "1"), -1) << "an unknown lag makes no gauge";
  EXPECT_EQ(lag_of(registry, "t", "-1"), -1) << "librdkafka's unassigned entry is left out";

  EXPECT_TRUE(statistics.apply(R"({"brokers": {"b1": {"nodeid": 1, "state": "UP"}},
                                   "topics": {"t": {"partitions": {"0": {"consumer_lag": 3}}}}})"));
  EXPECT_EQ(lag_of(registry, "t", "0"), 3) << "the same gauge, updated";
  EXPECT_FALSE(statistics.apply("not json"));
  EXPECT_FALSE(statistics.apply(R"({"brokers": [], "topics": {"t": {"partitions": [1, 2]}}})"))
      << "unexpected shapes are skipped, never thrown on";
  EXPECT_EQ(lag_of(registry, "t", "0"), 3);
}

}  // namespace
}  // namespace agentline::kafka::detail
