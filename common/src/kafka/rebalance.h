#pragma once
// The librdkafka side of a rebalance, for the consumer runtime's rebalance callback. Under the
// consumer protocol (KIP-848) and classic's cooperative assignors librdkafka reports
// "COOPERATIVE": assignments and revocations are increments. Classic's eager assignors (and a
// consumer outside a group) revoke everything and assign the whole new set.
//  - assigned: `assigned` runs first (the runtime's fresh partition states, its committed-offset
//    reads), then the partitions are assigned, then resumed: librdkafka keeps a partition's pause
//    flag across unassign/assign, so one paused for backpressure before a rebalance would stay
//    paused forever; flow control pauses it again if needed.
//  - revoked: `revoking` runs (finished work committed, the partitions' states dropped), then
//    the partitions are unassigned — even when `revoking` threw, which is logged: a member that
//    keeps revoked partitions assigned stalls its group.
// Every librdkafka call's error is logged: a failed assign leaves partitions unconsumed until
// the next rebalance, which the lag gauges and the log line make visible. Poll thread only.
#include <librdkafka/rdkafka.h>

#include <functional>

namespace agentline::kafka::detail {

struct RebalanceHandlers {
  std::function<void(rd_kafka_topic_partition_list_t*)> assigned;
  std::function<void(rd_kafka_topic_partition_list_t*)> revoking;
};

void serve_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                     const RebalanceHandlers& handlers);

}  // namespace agentline::kafka::detail
