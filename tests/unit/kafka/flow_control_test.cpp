#include "kafka/flow_control.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace agentline::kafka::detail {
namespace {

TEST(FlowControlTest, PriorityBackpressureWithHysteresisAndHoldsDecideEachPartition) {
  FlowControl flow(160);  // 16 x max_in_flight 10
  ASSERT_EQ(flow.held_bound(), 4096u);
  struct Case {
    const char* what;
    std::vector<std::size_t> waiting;  // by rank: 0 fix, 1 critical, 2 normal
    std::size_t held;
    bool holding;
    bool paused;
    std::size_t rank;
    bool tier;
    bool want;
  };
  const Case cases[] = {
      {"nothing waits: runs", {0, 0, 0}, 0, false, false, 2, false, false},
      {"a higher rank waits: the lower pauses", {0, 3, 0}, 0, false, false, 2, false, true},
      {"the rank that waits itself keeps running", {0, 3, 0}, 0, false, false, 1, false, false},
      {"a lower rank waiting does not pause a higher one", {0, 0, 150}, 0, false, false, 0, false, false},
      {"its backlog at the bound: pauses", {0, 0, 160}, 0, false, false, 2, false, true},
      {"between half and the bound: a paused one stays paused", {0, 0, 100}, 0, false, true, 2, false, true},
      {"between half and the bound: a running one keeps running", {0, 0, 100}, 0, false, false, 2, false, false},
      {"down to half: resumes", {0, 0, 80}, 0, false, true, 2, false, false},
      {"a backoff holds everything", {0, 0, 0}, 0, true, false, 0, false, true},
      {"held retry records at their bound pause the tiers", {0, 0, 0}, 4096, false, false, 0, true, true},
      {"... but not other topics", {0, 0, 0}, 4096, false, false, 0, false, false},
      {"a tier resumes only when held records are down to half", {0, 0, 0}, 3000, false, true, 0, true, true},
      {"a rank past the last counts as the lowest", {0, 5, 0}, 0, false, false, 9, false, true},
  };
  for (const auto& c : cases) {
    flow.observe(c.waiting, c.held, c.holding);
    EXPECT_EQ(flow.should_pause(c.paused, c.rank, c.tier), c.want) << c.what;
  }
}

// Bytes waiting pause fetching whatever the records' count (1 MB records would otherwise reach
// the bound in records only at a gigabyte), per rank as records do, with the same hysteresis.
TEST(FlowControlTest, BytesWaitingPauseWhateverTheRecordsCount) {
  FlowControl flow(160, 1000);
  ASSERT_EQ(flow.byte_bound(), 1000u);
  struct Case {
    const char* what;
    std::vector<std::size_t> bytes;  // by rank: 0 fix, 1 critical, 2 normal; two records each
    bool paused;
    std::size_t rank;
    bool want;
  };
  const Case cases[] = {
      {"under the bound: runs", {0, 0, 900}, false, 2, false},
      {"at the bound with few records: pauses", {0, 0, 1000}, false, 2, true},
      {"the bytes of higher ranks count for a lower one", {0, 600, 400}, false, 2, true},
      {"... not those of lower ranks for a higher one", {0, 0, 2000}, false, 0, false},
      {"between half and the bound: a paused one stays paused", {0, 0, 700}, true, 2, true},
      {"down to half: resumes", {0, 0, 500}, true, 2, false},
  };
  for (const auto& c : cases) {
    std::vector<std::size_t> waiting(c.bytes.size());
    for (std::size_t r = 0; r < c.bytes.size(); ++r) waiting[r] = c.bytes[r] > 0 ? 2 : 0;
    // Only the lowest rank waits in these cases, so priority alone pauses nothing here.
    if (c.bytes[1] > 0) waiting[1] = 0;
    flow.observe(waiting, 0, false, c.bytes);
    EXPECT_EQ(flow.should_pause(c.paused, c.rank, false), c.want) << c.what;
  }
}

// The poll loop's wait. While a backoff holds consumption, a held retry record already due
// cannot start: the loop waits for the hold's end (at most 100 ms a turn), not 0 ms, which spun
// a core for the whole hold. A paused tier still resumes on time during a hold.
TEST(FlowControlTest, ThePollLoopWaitsForAHoldsEndNotForARecordThatCannotStartDuringIt) {
  constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  const std::int64_t now = 1'000'000;
  EXPECT_EQ(poll_wait_ms(now - 50, kNone, now + 30'000, now), 100) << "due, but held for 30 s";
  EXPECT_EQ(poll_wait_ms(now - 50, kNone, now + 20, now), 20) << "due; the hold ends in 20 ms";
  EXPECT_EQ(poll_wait_ms(now - 50, now + 10, now + 30'000, now), 10) << "a tier resumes in 10 ms";
  EXPECT_EQ(poll_wait_ms(now - 50, kNone, now - 1, now), 0) << "the hold is over: start it now";
  EXPECT_EQ(poll_wait_ms(now + 40, kNone, 0, now), 40);
  EXPECT_EQ(poll_wait_ms(kNone, kNone, 0, now), 100) << "nothing due: the loop's longest wait";
  EXPECT_EQ(poll_wait_ms(kNone, kNone, now + 70, now), 70) << "a hold ends: dispatching resumes then";
}

}  // namespace
}  // namespace agentline::kafka::detail
