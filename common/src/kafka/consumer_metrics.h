#pragma once
// The consumer runtime's metrics, registered once at start with the service's label, and the
// per-topic handles kept so the hot path never looks a series up (STYLE.md, habit 5). One of
// the runtime's parts. The handles are prometheus-cpp's, themselves thread-safe; the maps are
// filled in the constructor and only read after.
#include <map>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace agentline::kafka::detail {

struct ConsumerMetrics {
  // `topics`: the physical topics consumed (retry tiers included).
  ConsumerMetrics(prometheus::Registry& registry, const std::string& service, const std::vector<std::string>& topics);

  // A record handed to the handler; its processing finished as `outcome` (ok, deferred,
  // retried, dead_lettered), or it was not run: done_before (commit_metadata.h). Topics not
  // consumed (none in practice) are counted by lookup.
  void consumed(const std::string& topic);
  void finished(const std::string& topic, const char* outcome);

  prometheus::Family<prometheus::Counter>& consumed_family;
  prometheus::Family<prometheus::Counter>& outcome_family;
  prometheus::Family<prometheus::Counter>& dead_letters;  // by error_class
  prometheus::Family<prometheus::Gauge>& lag;             // by topic, partition (ConsumerStatistics)
  prometheus::Family<prometheus::Counter>& lost;          // by topic
  prometheus::Family<prometheus::Gauge>& protocol;        // by protocol
  prometheus::Gauge& in_flight;
  prometheus::Gauge& held;
  prometheus::Gauge& read_ahead_records;  // fetched, waiting locally for a worker
  prometheus::Gauge& read_ahead_bytes;
  prometheus::Counter& delivery_failures;
  prometheus::Gauge& assigned;
  prometheus::Counter& rebalances;
  prometheus::Counter& commit_failures;
  prometheus::Histogram& handler_seconds;

 private:
  std::map<std::string, prometheus::Counter*> consumed_by_topic_;
  std::map<std::string, prometheus::Counter*> ok_by_topic_;
};

}  // namespace agentline::kafka::detail
