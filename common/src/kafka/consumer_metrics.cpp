#include "kafka/consumer_metrics.h"

#include <cstring>

namespace agentline::kafka::detail {
namespace {

template <typename Builder>
auto& build(Builder builder, prometheus::Registry& registry, const char* name, const char* help,
            const std::string& service) {
  return builder.Name(name).Help(help).Labels({{"service", service}}).Register(registry);
}

}  // namespace

ConsumerMetrics::ConsumerMetrics(prometheus::Registry& r, const std::string& s, const std::vector<std::string>& topics)
    : consumed_family(build(prometheus::BuildCounter(), r, "agentline_records_consumed_total",
                            "Records handed to the service's handler, by topic", s)),
      outcome_family(build(prometheus::BuildCounter(), r, "agentline_records_processed_total",
                           "Records whose processing finished, by topic and outcome (ok, deferred, retried, "
                           "dead_lettered, done_before: finished by the partition's previous owner)",
                           s)),
      dead_letters(build(prometheus::BuildCounter(), r, "agentline_dead_letters_total",
                         "Records sent to the DLQ, by error class", s)),
      lag(build(prometheus::BuildGauge(), r, "agentline_consumer_lag_messages",
                "Consumer lag per partition, from librdkafka statistics", s)),
      lost(build(prometheus::BuildCounter(), r, "agentline_consumer_records_lost_total",
                 "Records removed from the log (retention, embedded-broker cap) before this group read them", s)),
      protocol(build(prometheus::BuildGauge(), r, "agentline_consumer_group_protocol",
                     "1 for the consumer group protocol in use: consumer (KIP-848) or classic", s)),
      in_flight(build(prometheus::BuildGauge(), r, "agentline_records_in_flight",
                      "Records dispatched whose processing has not finished", s)
                    .Add({})),
      held(build(prometheus::BuildGauge(), r, "agentline_consumer_held",
                 "1 while consumption is held because a backend asked to back off (breaker open, rate limit)", s)
               .Add({})),
      read_ahead_records(build(prometheus::BuildGauge(), r, "agentline_consumer_read_ahead_records",
                               "Records fetched and waiting locally for a worker (flow control bounds them)", s)
                             .Add({})),
      read_ahead_bytes(build(prometheus::BuildGauge(), r, "agentline_consumer_read_ahead_bytes",
                             "Bytes (keys, values, headers) of the records fetched and waiting locally for a worker", s)
                           .Add({})),
      delivery_failures(build(prometheus::BuildCounter(), r, "agentline_delivery_failures_total",
                              "Produced records Kafka did not acknowledge", s)
                            .Add({})),
      assigned(build(prometheus::BuildGauge(), r, "agentline_consumer_assigned_partitions",
                     "Partitions this member consumes now (0 between an eager revoke and the next assignment)", s)
                   .Add({})),
      rebalances(build(prometheus::BuildCounter(), r, "agentline_rebalances_total",
                       "Partition assignments and revocations seen", s)
                     .Add({})),
      commit_failures(build(prometheus::BuildCounter(), r, "agentline_commit_failures_total",
                            "Offset commits the broker refused", s)
                          .Add({})),
      handler_seconds(
          build(prometheus::BuildHistogram(), r, "agentline_handler_duration_seconds",
                "Time spent in the service's handler per record", s)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120})) {
  for (const auto& topic : topics) {
    consumed_by_topic_[topic] = &consumed_family.Add({{"topic", topic}});
    ok_by_topic_[topic] = &outcome_family.Add({{"topic", topic}, {"outcome", "ok"}});
    lost.Add({{"topic", topic}});  // exported at 0, so alerts see the series before a loss
  }
}

void ConsumerMetrics::consumed(const std::string& topic) {
  if (auto c = consumed_by_topic_.find(topic); c != consumed_by_topic_.end()) {
    c->second->Increment();
  } else {
    consumed_family.Add({{"topic", topic}}).Increment();
  }
}

void ConsumerMetrics::finished(const std::string& topic, const char* outcome) {
  if (std::strcmp(outcome, "ok") == 0) {
    if (auto c = ok_by_topic_.find(topic); c != ok_by_topic_.end()) return c->second->Increment();
  }
  outcome_family.Add({{"topic", topic}, {"outcome", outcome}}).Increment();
}

}  // namespace agentline::kafka::detail
