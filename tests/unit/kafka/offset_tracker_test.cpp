#include "agentline/kafka/offset_tracker.h"

#include <gtest/gtest.h>

using agentline::kafka::OffsetTracker;

TEST(OffsetTracker, NothingCommittableUntilTheFirstRecordFinishes) {
  OffsetTracker t;
  t.start(10);
  t.start(11);
  EXPECT_FALSE(t.committable().has_value());
  EXPECT_EQ(t.in_flight(), 2u);
}

TEST(OffsetTracker, OutOfOrderCompletionCommitsOnlyTheContiguousPrefix) {
  OffsetTracker t;
  for (int o = 0; o < 5; ++o) t.start(o);
  t.finish(3);
  t.finish(1);
  EXPECT_FALSE(t.committable().has_value()) << "offset 0 still runs, nothing may be committed";
  t.finish(0);
  EXPECT_EQ(t.committable(), 2) << "0 and 1 are done, 2 is still running";
  t.finish(2);
  EXPECT_EQ(t.committable(), 4) << "0..3 done, 4 running";
  t.finish(4);
  EXPECT_EQ(t.committable(), 5);
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, GapsInOffsetsFromCompactionOrTransactionMarkers) {
  OffsetTracker t;
  t.start(100);
  t.start(105);
  t.start(230);
  t.finish(105);
  t.finish(100);
  EXPECT_EQ(t.committable(), 106);
  t.finish(230);
  EXPECT_EQ(t.committable(), 231);
}

TEST(OffsetTracker, UnknownAndRepeatedFinishesAreIgnored) {
  OffsetTracker t;
  t.start(1);
  t.finish(7);
  EXPECT_FALSE(t.committable().has_value());
  t.finish(1);
  t.finish(1);
  EXPECT_EQ(t.committable(), 2);
}

TEST(OffsetTracker, StartingOffsetsOutOfOrderIsAProgrammingError) {
  OffsetTracker t;
  t.start(5);
  EXPECT_THROW(t.start(5), std::logic_error);
  EXPECT_THROW(t.start(4), std::logic_error);
}

TEST(OffsetTracker, TellsWhatFinishedBehindARecordStillPending) {
  OffsetTracker t;
  for (int o = 10; o < 16; ++o) t.start(o);
  t.finish(12);
  t.finish(13);
  t.finish(15);
  EXPECT_EQ(t.first_pending(), 10);
  EXPECT_EQ(t.finished_beyond(), (std::vector<std::int64_t>{12, 13, 15}));
  t.finish(10);
  t.finish(11);
  EXPECT_EQ(t.committable(), 14);
  EXPECT_EQ(t.first_pending(), 14);
  EXPECT_EQ(t.finished_beyond(), (std::vector<std::int64_t>{15}));
}
