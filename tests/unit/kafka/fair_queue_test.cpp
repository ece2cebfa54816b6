// Weighted fair queuing of the records waiting in one priority rank (common/src/kafka/fair_queue.h).
#include "kafka/fair_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace agentline::kafka::detail {
namespace {

// Dispatches `n` records at `now_ms`; the keys in order.
std::vector<std::string> dispatch(FairQueue<int>& q, int n, std::int64_t now_ms = 0) {
  std::vector<std::string> order;
  for (int i = 0; i < n; ++i) {
    const std::string* key = q.next(now_ms);
    if (key == nullptr) break;
    order.push_back(*key);
    q.pop(*key);
  }
  return order;
}

TEST(FairQueue, OneKeyIsFirstComeFirstServed) {
  FairQueue<int> q;
  for (int i = 0; i < 5; ++i) q.push("", 1, i);
  std::vector<int> got;
  while (const std::string* key = q.next(0)) {
    got.push_back(q.front(*key));
    q.pop(*key);
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(q.empty());
}

// Flow control bounds the bytes waiting: they are what each record weighed when it came in, even
// once the runtime has moved it out to start it (then pops it), put it back, or erased it.
TEST(FairQueue, BytesWaitingFollowEveryWayARecordComesAndGoes) {
  struct Size {
    std::size_t operator()(const std::string& s) const { return s.size(); }
  };
  FairQueue<std::string, Size> q;
  q.push("a", 1, std::string(100, 'a'));
  q.push("b", 1, std::string(10, 'b'));
  q.push("b", 1, std::string(1, 'c'));
  EXPECT_EQ(q.bytes(), 111u);
  const std::string* key = q.next(0);
  ASSERT_NE(key, nullptr);
  const std::string first = *key;
  std::string taken = std::move(q.front(first));  // started: the runtime moves it out first
  q.pop(first);
  EXPECT_EQ(q.bytes(), 111u - taken.size());
  q.push_front(first, 1, std::move(taken));  // told to wait: back at its key's head
  EXPECT_EQ(q.bytes(), 111u);
  q.erase_if([](const std::string& s) { return s[0] == 'b'; });
  EXPECT_EQ(q.bytes(), 101u);
  EXPECT_EQ(q.size(), 2u);
  while (const std::string* k = q.next(0)) q.pop(*k, false);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(FairQueue, ATenantsFirstRecordWaitsBehindAtMostOneRecordOfAFloodingTenant) {
  FairQueue<int> q;
  for (int i = 0; i < 10000; ++i) q.push("a", 1, i);
  EXPECT_EQ(dispatch(q, 100), std::vector<std::string>(100, "a"));
  q.push("b", 1, 0);
  const auto next = dispatch(q, 2);
  EXPECT_NE(std::find(next.begin(), next.end(), "b"), next.end()) << "b behind 9,900 records of a";
  // Both backlogged: turns alternate, and a's records keep their order.
  for (int i = 1; i <= 50; ++i) q.push("b", 1, i);
  std::map<std::string, int> share;
  for (const auto& k : dispatch(q, 100)) ++share[k];
  EXPECT_EQ(share["a"], 50);
  EXPECT_EQ(share["b"], 50);
  EXPECT_EQ(q.front("a"), 151);
}

TEST(FairQueue, WeightsShareDispatchesAndAnIdleTenantEarnsNoCredit) {
  FairQueue<int> q;
  for (int i = 0; i < 400; ++i) q.push("gold", 3, i);
  for (int i = 0; i < 400; ++i) q.push("free", 1, i);
  std::map<std::string, int> share;
  for (const auto& k : dispatch(q, 400)) ++share[k];
  EXPECT_EQ(share["gold"], 300);
  EXPECT_EQ(share["free"], 100);

  // "late" arrives after 400 dispatches: it shares from now on, without a burst for the past.
  for (int i = 0; i < 100; ++i) q.push("late", 1, i);
  share.clear();
  for (const auto& k : dispatch(q, 50)) ++share[k];
  EXPECT_LE(share["late"], 11) << "one weight in five: 10 of 50, not all 50";
  EXPECT_GE(share["late"], 9);
}

TEST(FairQueue, AHeldKeyWaitsWhileTheOthersGoOnAndReturnsWithoutABurst) {
  FairQueue<int> q;
  for (int i = 0; i < 100; ++i) q.push("a", 1, i);
  for (int i = 0; i < 100; ++i) q.push("b", 1, i);
  q.hold("a", 1000);
  EXPECT_EQ(q.held(0), 100u);
  EXPECT_EQ(q.next_release_ms(0), 1000);
  EXPECT_EQ(dispatch(q, 60, 999), std::vector<std::string>(60, "b"));
  std::map<std::string, int> share;
  for (const auto& k : dispatch(q, 20, 1000)) ++share[k];
  EXPECT_NEAR(share["a"], 10, 1) << "after its hold a shares again, without catching up on the 60";
  q.hold("b", 5000);
  q.hold("a", 5000);
  EXPECT_EQ(q.next(1000), nullptr) << "every key with records is held";
  EXPECT_EQ(q.next_release_ms(1000), 5000);
}

TEST(FairQueue, ErasedRecordsLeaveTheirKeysAndCounts) {
  FairQueue<int> q;
  for (int i = 0; i < 10; ++i) q.push(i % 2 ? "odd" : "even", 1, i);
  q.erase_if([](int v) { return v % 2 == 1; });
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(dispatch(q, 10), std::vector<std::string>(5, "even"));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next(0), nullptr);
}

}  // namespace
}  // namespace agentline::kafka::detail
