#include "kafka/commit_metadata.h"

#include <gtest/gtest.h>

using agentline::kafka::detail::decode_finished;
using agentline::kafka::detail::encode_finished;

TEST(CommitMetadata, FinishedOffsetsTravelAsRangesRelativeToTheCommittedOffset) {
  const std::string m = encode_finished(100, {103, 104, 105, 110});
  EXPECT_EQ(m, "agentline-done:1:3-5,10");
  EXPECT_EQ(decode_finished(100, m), (std::set<std::int64_t>{103, 104, 105, 110}));
  EXPECT_EQ(encode_finished(100, {}), "") << "nothing beyond the commit: no metadata";
}

TEST(CommitMetadata, WhatDoesNotFitIsLeftOutLowestKeptAndRunsAgain) {
  std::vector<std::int64_t> finished;
  for (std::int64_t o = 1; o <= 2000; o += 2) finished.push_back(o);  // 1000 single ranges
  const std::string m = encode_finished(0, finished, 200);
  EXPECT_LE(m.size(), 200u);
  const auto back = decode_finished(0, m);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(*back.begin(), 1);
  for (auto o : back) EXPECT_EQ(o % 2, 1) << "never an offset that did not finish";
  EXPECT_LT(back.size(), finished.size());
}

TEST(CommitMetadata, AnythingElseReadsAsNothingFinished) {
  for (const char* m : {"", "some other client's note", "agentline-done:1:", "agentline-done:1:3-",
                        "agentline-done:1:5-3", "agentline-done:1:0", "agentline-done:1:-2", "agentline-done:1:3,x",
                        "agentline-done:2:3", "agentline-done:1:1-99999999999"}) {
    EXPECT_TRUE(decode_finished(100, m).empty()) << m;
  }
}
