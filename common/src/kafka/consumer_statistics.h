#pragma once
// librdkafka's statistics (statistics.interval.ms), read on librdkafka's thread: each
// partition's consumer lag as agentline_consumer_lag_messages{topic,partition}, and whether a
// broker (not a bootstrap entry) is UP, which ends "all brokers down" for a service that has
// nothing to consume. One of the consumer runtime's parts; not thread-safe (one stats thread).
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <prometheus/family.h>
#include <prometheus/gauge.h>

namespace agentline::kafka::detail {

class ConsumerStatistics {
 public:
  // `lag_family`: the runtime's agentline_consumer_lag_messages family (its constant labels).
  explicit ConsumerStatistics(prometheus::Family<prometheus::Gauge>& lag_family) : lag_family_(lag_family) {}

  // One statistics document. Returns whether it shows a broker UP; a document that is not JSON
  // changes nothing and returns false.
  bool apply(std::string_view json);

 private:
  prometheus::Family<prometheus::Gauge>& lag_family_;
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> gauges_;
};

}  // namespace agentline::kafka::detail
