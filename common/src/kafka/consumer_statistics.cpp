#include "kafka/consumer_statistics.h"

#include <nlohmann/json.hpp>

namespace agentline::kafka::detail {

bool ConsumerStatistics::apply(std::string_view json) {
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  bool broker_up = false;
  if (doc.contains("brokers") && doc["brokers"].is_object()) {
    for (const auto& [name, b] : doc["brokers"].items()) {
      // Bootstrap entries have nodeid -1: only a broker of the cluster counts.
      if (b.is_object() && b.value("nodeid", -1) >= 0 && b.value("state", "") == "UP") broker_up = true;
    }
  }
  if (!doc.contains("topics") || !doc["topics"].is_object()) return broker_up;
  for (const auto& [topic, t] : doc["topics"].items()) {
    if (!t.is_object() || !t.contains("partitions") || !t["partitions"].is_object()) continue;
    for (const auto& [partition, p] : t["partitions"].items()) {
      if (partition == "-1" || !p.is_object()) continue;  // -1: librdkafka's unassigned-partition entry
      const auto lag = p.value("consumer_lag", std::int64_t{-1});
      if (lag < 0) continue;  // not known yet
      auto& gauge = gauges_[{topic, partition}];
      if (gauge == nullptr) gauge = &lag_family_.Add({{"topic", topic}, {"partition", partition}});
      gauge->Set(static_cast<double>(lag));
    }
  }
  return broker_up;
}

}  // namespace agentline::kafka::detail
