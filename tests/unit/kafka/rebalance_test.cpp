// The librdkafka side of a rebalance (rebalance.h) on a real consumer handle, outside a group
// (eager: the whole set is assigned and unassigned; no broker is needed for that).
#include "kafka/rebalance.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "kafka/handles.h"

namespace agentline::kafka::detail {
namespace {

KafkaPtr consumer() {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "group.id", "rebalance-test", error, sizeof error);
  rd_kafka_conf_set(conf, "log_level", "0", error, sizeof error);
  KafkaPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error));
  if (!rk) throw std::runtime_error(error);
  return rk;
}

int assigned_count(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  PartitionListPtr owned(list);
  return list->cnt;
}

TEST(Rebalance, TheRuntimeTakesAnAssignmentBeforeLibrdkafkaAssignsIt) {
  auto rk = consumer();
  PartitionListPtr parts(rd_kafka_topic_partition_list_new(2));
  rd_kafka_topic_partition_list_add(parts.get(), "rebalance-test", 0);
  rd_kafka_topic_partition_list_add(parts.get(), "rebalance-test", 1);
  int assigned_when_told = -1;
  serve_rebalance(rk.get(), RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, parts.get(),
                  {[&](rd_kafka_topic_partition_list_t* p) {
                     EXPECT_EQ(p->cnt, 2);
                     assigned_when_told = assigned_count(rk.get());
                   },
                   {}});
  EXPECT_EQ(assigned_when_told, 0) << "the runtime's partition states exist before any record can arrive";
  EXPECT_EQ(assigned_count(rk.get()), 2);
}

TEST(Rebalance, RevokedPartitionsAreUnassignedAfterTheRuntimeLetThemGoEvenWhenItFailed) {
  auto rk = consumer();
  PartitionListPtr parts(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(parts.get(), "rebalance-test", 0);
  serve_rebalance(rk.get(), RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, parts.get(), {});
  ASSERT_EQ(assigned_count(rk.get()), 1);
  int assigned_when_told = -1;
  serve_rebalance(rk.get(), RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, parts.get(),
                  {{}, [&](rd_kafka_topic_partition_list_t*) {
                     assigned_when_told = assigned_count(rk.get());
                     throw std::runtime_error("the commit failed");
                   }});
  EXPECT_EQ(assigned_when_told, 1) << "finished work is committed while the partitions are still ours";
  EXPECT_EQ(assigned_count(rk.get()), 0) << "a member keeping revoked partitions would stall its group";
  // A rebalance error (neither assign nor revoke) unassigns too.
  serve_rebalance(rk.get(), RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, parts.get(), {});
  serve_rebalance(rk.get(), RD_KAFKA_RESP_ERR__FAIL, parts.get(), {});
  EXPECT_EQ(assigned_count(rk.get()), 0);
}

}  // namespace
}  // namespace agentline::kafka::detail
