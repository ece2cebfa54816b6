// The consumer runtime's in-flight count (common/src/kafka/in_flight.h).
#include "kafka/in_flight.h"

#include <gtest/gtest.h>

namespace agentline::kafka::detail {
namespace {

TEST(InFlight, HandlersAreBoundedByMaxInFlightAndAcknowledgementsDoNotHoldASlot) {
  InFlight f(2);
  EXPECT_TRUE(f.has_room());
  f.dispatched();
  f.dispatched();
  EXPECT_FALSE(f.has_room()) << "two handlers running";
  f.handler_returned(100);
  EXPECT_TRUE(f.has_room()) << "a returned handler frees its slot while its outputs await acknowledgement";
  EXPECT_EQ(f.running(), 1);
  EXPECT_EQ(f.awaiting(), 1);
  EXPECT_EQ(f.awaiting_bytes(), 100u);
  EXPECT_EQ(f.unfinished(), 2) << "the gauge counts both";
  f.acknowledged(100);
  EXPECT_EQ(f.unfinished(), 1);
  EXPECT_EQ(f.awaiting_bytes(), 0u);
  f.deferred();
  EXPECT_EQ(f.unfinished(), 0) << "a deferred record is neither running nor awaiting";
  f.dispatched();
  f.dispatched();
  f.dropped(2);
  EXPECT_EQ(f.running(), 0) << "dispatched, never started";
}

TEST(InFlight, AnAdaptiveLimitBoundsHandlersBetweenOneAndMaxInFlight) {
  InFlight f(4);
  f.set_limit(2);
  f.dispatched();
  f.dispatched();
  EXPECT_FALSE(f.has_room()) << "two running at a limit of two";
  f.set_limit(3);
  EXPECT_TRUE(f.has_room());
  f.set_limit(100);
  EXPECT_EQ(f.limit(), 4) << "never above max_in_flight: there are that many workers";
  f.set_limit(0);
  EXPECT_EQ(f.limit(), 1) << "never below one, or nothing would run";
}

TEST(InFlight, RecordsAwaitingAcknowledgementAreBoundedByCountAndBytes) {
  InFlight by_count(1);
  for (int i = 0; i < InFlight::kAwaitingPerSlot; ++i) {
    ASSERT_TRUE(by_count.has_room()) << i;
    by_count.dispatched();
    by_count.handler_returned(1);
  }
  EXPECT_FALSE(by_count.has_room()) << "256 per slot await acknowledgement: a slow broker stops dispatch";
  by_count.acknowledged(1);
  EXPECT_TRUE(by_count.has_room());

  InFlight by_bytes(16);
  by_bytes.dispatched();
  by_bytes.handler_returned(InFlight::kAwaitingBytes);
  EXPECT_FALSE(by_bytes.has_room()) << "64 MiB of inputs held";
  by_bytes.acknowledged(InFlight::kAwaitingBytes);
  EXPECT_TRUE(by_bytes.has_room());
}

}  // namespace
}  // namespace agentline::kafka::detail
