// The partitions a member owns, as rebalances change them (common/src/kafka/partition_table.h).
#include "kafka/partition_table.h"

#include <gtest/gtest.h>

namespace agentline::kafka::detail {
namespace {

int rank_of(const std::string& topic) { return topic == "retry" ? 0 : 2; }

TEST(PartitionTable, AnAssignedPartitionStartsAfreshRankedByItsTopic) {
  PartitionTable table;
  table.assign({{"tasks", 0}, {"retry", 1}}, rank_of);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find({"tasks", 0})->rank, 2);
  EXPECT_EQ(table.find({"retry", 1})->rank, 0);
  EXPECT_EQ(table.find({"tasks", 1}), nullptr) << "not ours";
  table.find({"tasks", 0})->tracker.start(7);
  table.assign({{"tasks", 0}}, rank_of);
  EXPECT_EQ(table.find({"tasks", 0})->tracker.in_flight(), 0u) << "assigned again: offsets tracked anew";
}

TEST(PartitionTable, ARevocationWaitsOnlyForRecordsRunningNotForDeferredOnes) {
  PartitionTable table;
  table.assign({{"tasks", 0}, {"tasks", 1}}, rank_of);
  table.find({"tasks", 0})->tracker.start(1);
  table.find({"tasks", 0})->tracker.start(2);
  const std::set<PartitionId> both{{"tasks", 0}, {"tasks", 1}};
  EXPECT_FALSE(table.settled(both, {})) << "two records running on tasks[0]";
  EXPECT_FALSE(table.settled(both, {{{"tasks", 0}, 1}})) << "one of them deferred, one running";
  EXPECT_TRUE(table.settled(both, {{{"tasks", 0}, 2}})) << "both only deferred";
  table.find({"tasks", 0})->tracker.finish(1);
  table.find({"tasks", 0})->tracker.finish(2);
  EXPECT_TRUE(table.settled(both, {}));
  EXPECT_TRUE(table.settled({{"other", 0}}, {})) << "a partition not ours holds nothing up";
}

TEST(PartitionTable, ARevokedPartitionLeavesAndWhatStillRunsSeesItRevoked) {
  PartitionTable table;
  table.assign({{"retry", 0}, {"tasks", 0}}, rank_of);
  auto running = table.find({"retry", 0});  // a job holds its partition's state
  running->tracker.start(10);
  running->held.push_back(InboundRecord{});
  const auto still = table.revoke({{"retry", 0}});
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0].first, (PartitionId{"retry", 0}));
  EXPECT_EQ(still[0].second, 1u) << "one record still running: the next owner replays it";
  EXPECT_TRUE(running->revoked) << "its finish must not move a commit";
  EXPECT_TRUE(running->held.empty()) << "held records are the next owner's";
  EXPECT_EQ(table.find({"retry", 0}), nullptr);
  EXPECT_EQ(table.ids(), (std::vector<PartitionId>{{"tasks", 0}}));
  table.revoke_all();
  EXPECT_TRUE(table.find({"tasks", 0})->revoked) << "shutdown: kept, but revoked";
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace agentline::kafka::detail
