#include "kafka/retry_tier_gate.h"

#include <gtest/gtest.h>

namespace agentline::kafka::detail {
namespace {

using D = RetryTierGate::Decision;

TEST(RetryTierGateTest, ARecordRunsAtItsDueTimeWaitsInMemoryWithinTheLeadAndPausesItsPartitionBeyond) {
  RetryTierGate gate;
  gate.set_lead(RetryTierGate::lead_for(100));  // the runtime's fetch.wait.max.ms
  EXPECT_EQ(gate.lead(), 250) << "at least 250 ms";
  EXPECT_EQ(RetryTierGate::lead_for(500), 650) << "a 500 ms long poll behind other partitions, and 150 ms";
  const std::int64_t now = 1'000'000;
  EXPECT_EQ(gate.decide(now - 5, now, false), D::kRun) << "overdue: runs";
  EXPECT_EQ(gate.decide(now, now, false), D::kRun) << "due now: runs";
  EXPECT_EQ(gate.decide(now - 5, now, true), D::kHold) << "behind held records: keeps their order";
  EXPECT_EQ(gate.decide(now + 1, now, false), D::kHold) << "never before its due time";
  EXPECT_EQ(gate.decide(now + 250, now, false), D::kHold) << "within the lead: waits in memory";
  EXPECT_EQ(gate.decide(now + 251, now, false), D::kPause) << "beyond the lead: the partition pauses";
  EXPECT_EQ(gate.decide(now + 60'000, now, true), D::kPause);
  EXPECT_EQ(gate.resume_at(now + 60'000), now + 60'000 - 250) << "resumes a lead before it is due";
}

}  // namespace
}  // namespace agentline::kafka::detail
