#include "kafka/consumer_metrics.h"

#include <gtest/gtest.h>

#include <set>

namespace agentline::kafka::detail {
namespace {

double value_of(prometheus::Registry& registry, const std::string& name, std::map<std::string, std::string> want) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      bool match = true;
      for (const auto& [k, v] : want) match = match && labels[k] == v;
      if (match) return m.counter.value + m.gauge.value;
    }
  }
  return -1;
}

TEST(ConsumerMetricsTest, EveryFamilyCarriesTheServiceAndEachTopicIsExportedBeforeItsFirstRecord) {
  prometheus::Registry registry;
  ConsumerMetrics metrics(registry, "router", {"agentline.events", "agentline.events.retry.1"});
  std::set<std::string> names;
  for (const auto& family : registry.Collect()) {
    names.insert(family.name);
    for (const auto& m : family.metric) {
      bool has_service = false;
      for (const auto& l : m.label) has_service = has_service || (l.name == "service" && l.value == "router");
      EXPECT_TRUE(has_service) << family.name;
    }
  }
  for (const char* name : {"agentline_records_consumed_total", "agentline_records_processed_total",
                           "agentline_consumer_records_lost_total", "agentline_records_in_flight",
                           "agentline_consumer_held", "agentline_rebalances_total", "agentline_commit_failures_total",
                           "agentline_handler_duration_seconds", "agentline_consumer_assigned_partitions"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_EQ(value_of(registry, "agentline_consumer_records_lost_total", {{"topic", "agentline.events"}}), 0)
      << "a loss alert sees the series at 0 before any loss";

  metrics.consumed("agentline.events");
  metrics.consumed("agentline.events");
  metrics.finished("agentline.events", "ok");
  metrics.finished("agentline.events", "retried");
  metrics.consumed("agentline.other");  // not subscribed: still counted
  EXPECT_EQ(value_of(registry, "agentline_records_consumed_total", {{"topic", "agentline.events"}}), 2);
  EXPECT_EQ(value_of(registry, "agentline_records_consumed_total", {{"topic", "agentline.other"}}), 1);
  EXPECT_EQ(value_of(registry, "agentline_records_processed_total", {{"topic", "agentline.events"}, {"outcome", "ok"}}),
            1);
  EXPECT_EQ(
      value_of(registry, "agentline_records_processed_total", {{"topic", "agentline.events"}, {"outcome", "retried"}}),
      1);
}

}  // namespace
}  // namespace agentline::kafka::detail
