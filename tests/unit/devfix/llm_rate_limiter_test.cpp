#include "llm_rate_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

namespace agentline::devfix {
namespace {

using namespace std::chrono_literals;
using resilience::ManualClock;

TEST(LlmRateLimiter, AdmitsOnlyWhenRequestsTokensAndInFlightAllHaveRoom) {
  ManualClock clock;
  LlmRateLimiter limiter("openai", {3, 1000, 2}, clock);
  auto a = limiter.try_acquire(400);
  auto b = limiter.try_acquire(400);
  ASSERT_TRUE(a && b);
  auto c = limiter.try_acquire(100);
  EXPECT_EQ(c.refusal(), LlmRateLimiter::Refusal::kInFlight);
  a.complete(100);  // refunds 300 tokens
  auto d = limiter.try_acquire(500);
  ASSERT_TRUE(d) << "the refund made room: 100 + 400 + 500 = 1000";
  b.complete(400);
  auto e = limiter.try_acquire(1);
  EXPECT_EQ(e.refusal(), LlmRateLimiter::Refusal::kRequests) << "three requests this minute";
  EXPECT_GT(e.retry_after(), 59s);
  d.complete(500);
  auto s = limiter.stats();
  EXPECT_EQ(s.requests_in_window, 3);
  EXPECT_EQ(s.tokens_in_window, 1000);
  EXPECT_EQ(s.tokens_refunded, 300);
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.rejected["in_flight"], 1);
  EXPECT_EQ(s.rejected["requests_per_minute"], 1);
  clock.advance(61s);
  auto f = limiter.try_acquire(1000);
  EXPECT_TRUE(f);
  auto g = limiter.try_acquire(1001);
  EXPECT_EQ(g.refusal(), LlmRateLimiter::Refusal::kTooLarge);
}

TEST(LlmRateLimiter, TokensPerMinuteIsCheckedAgainstTheReservation) {
  ManualClock clock;
  LlmRateLimiter limiter("openai", {0, 1000, 0}, clock);
  auto a = limiter.try_acquire(800);
  ASSERT_TRUE(a);
  auto b = limiter.try_acquire(300);
  EXPECT_EQ(b.refusal(), LlmRateLimiter::Refusal::kTokens);
  a.release();  // no usage reported: the whole reservation stays charged
  EXPECT_FALSE(limiter.try_acquire(300));
  clock.advance(b.retry_after());
  EXPECT_TRUE(limiter.try_acquire(300));
}

TEST(LlmRateLimiter, ServerFeedbackBacksOff) {
  ManualClock clock;
  LlmRateLimiter limiter("openai", {1000, 1000000, 100}, clock);
  limiter.on_feedback(RateLimitFeedback::from_headers({{"Retry-After", "20"}}));
  auto a = limiter.try_acquire(10);
  EXPECT_EQ(a.refusal(), LlmRateLimiter::Refusal::kBackoff);
  EXPECT_EQ(a.retry_after(), 20s);
  clock.advance(20s);
  EXPECT_TRUE(limiter.try_acquire(10));

  // The server says 0 requests left until its reset: nothing goes until then.
  limiter.on_feedback(
      RateLimitFeedback::from_headers({{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "5s"}}));
  EXPECT_EQ(limiter.try_acquire(10).refusal(), LlmRateLimiter::Refusal::kBackoff);
  clock.advance(5s);
  EXPECT_TRUE(limiter.try_acquire(10));

  // 500 tokens left on the server: a 400-token call fits, the next one does not.
  limiter.on_feedback(
      RateLimitFeedback::from_headers({{"x-ratelimit-remaining-tokens", "500"}, {"x-ratelimit-reset-tokens", "10s"}}));
  EXPECT_TRUE(limiter.try_acquire(400));
  EXPECT_EQ(limiter.try_acquire(400).refusal(), LlmRateLimiter::Refusal::kBackoff);
  clock.advance(10s);
  EXPECT_TRUE(limiter.try_acquire(400));
}

// Many threads race for the limits, each holding up to three calls at once; the clock moves
// between steps. Afterwards every window of one minute is checked against the limits, and the
// in-flight high-water mark against its own.
TEST(LlmRateLimiter, StressNoLimitIsEverOverAdmitted) {
  ManualClock clock;
  const LlmLimits limits{120, 60000, 8};
  LlmRateLimiter limiter("stress", limits, clock);
  constexpr int kThreads = 6;
  struct Admitted {
    TimePoint at;
    std::int64_t tokens;  // net of the refund
  };
  std::mutex mu;
  std::vector<Admitted> admitted;
  std::atomic<int> in_flight{0};
  std::atomic<int> most_in_flight{0};
  std::barrier step(kThreads, [&]() noexcept { clock.advance(97ms); });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
      std::uniform_int_distribution<int> want(50, 1500);
      std::vector<Admitted> mine;
      std::deque<LlmRateLimiter::Lease> held;
      auto finish_oldest = [&] {
        auto lease = std::move(held.front());
        held.pop_front();
        const auto used = std::uniform_int_distribution<std::int64_t>(0, lease.reserved_tokens())(rng);
        in_flight.fetch_sub(1);
        lease.complete(used);
        mine.push_back({lease.admitted_at(), used});
      };
      for (int i = 0; i < 3000; ++i) {  // about five simulated minutes
        for (int k = 0; k < 2; ++k) {
          auto lease = limiter.try_acquire(want(rng));
          if (!lease) continue;
          const int now = in_flight.fetch_add(1) + 1;
          int prev = most_in_flight.load();
          while (now > prev && !most_in_flight.compare_exchange_weak(prev, now)) {
          }
          held.push_back(std::move(lease));
          if (held.size() > 2) finish_oldest();
        }
        if (i % 7 == t % 7 && !held.empty()) finish_oldest();
        step.arrive_and_wait();
      }
      while (!held.empty()) finish_oldest();
      std::lock_guard lock(mu);
      admitted.insert(admitted.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();

  ASSERT_GT(admitted.size(), 500u) << "the test must exercise the limits";
  std::sort(admitted.begin(), admitted.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  std::size_t lo = 0;
  std::int64_t tokens = 0;
  std::int64_t worst_requests = 0;
  std::int64_t worst_tokens = 0;
  for (std::size_t hi = 0; hi < admitted.size(); ++hi) {
    tokens += admitted[hi].tokens;
    while (admitted[lo].at < admitted[hi].at - std::chrono::minutes(1)) tokens -= admitted[lo++].tokens;
    worst_requests = std::max<std::int64_t>(worst_requests, static_cast<std::int64_t>(hi - lo + 1));
    worst_tokens = std::max(worst_tokens, tokens);
  }
  EXPECT_LE(worst_requests, limits.requests_per_minute);
  EXPECT_LE(worst_tokens, limits.tokens_per_minute);
  EXPECT_LE(most_in_flight.load(), limits.max_in_flight);
  EXPECT_GE(worst_requests, limits.requests_per_minute * 9 / 10) << "and the limit is actually reached";
  auto s = limiter.stats();
  EXPECT_GT(s.rejected["in_flight"] + s.rejected["requests_per_minute"] + s.rejected["tokens_per_minute"], 0);
}

TEST(LlmRateLimiter, UsageBeyondTheReservationIsCharged) {
  ManualClock clock;
  LlmRateLimiter limiter("openai", {0, 1000, 0}, clock);
  auto a = limiter.try_acquire(100);
  a.complete(700);  // the server counted 700
  EXPECT_EQ(limiter.stats().tokens_in_window, 700);
  EXPECT_EQ(limiter.try_acquire(400).refusal(), LlmRateLimiter::Refusal::kTokens);
}

TEST(LlmRateLimiter, BurstHourAndDayWindowsHoldAsTheSeedsStateThem) {
  ManualClock clock;
  LlmLimits limits;
  limits.burst = 2;
  limits.requests_per_hour = 3;
  limits.tokens_per_day = 1000;
  LlmRateLimiter limiter("seeds", limits, clock);
  auto a = limiter.try_acquire(400);
  auto b = limiter.try_acquire(100);
  ASSERT_TRUE(a && b);
  auto c = limiter.try_acquire(100);
  EXPECT_EQ(c.refusal(), LlmRateLimiter::Refusal::kBurst) << "two in one second";
  EXPECT_LE(c.retry_after(), 1100ms) << "a second, counted in slices of 50 ms";
  clock.advance(1100ms);
  auto d = limiter.try_acquire(600);
  EXPECT_EQ(d.refusal(), LlmRateLimiter::Refusal::kTokensPerDay) << "400 + 100 + 600 > 1000 today";
  EXPECT_GT(d.retry_after(), 23h);
  a.complete(50);  // the server counted 50 of the 400 reserved
  auto e = limiter.try_acquire(600);
  ASSERT_TRUE(e) << "the refund made room in the day";
  auto f = limiter.try_acquire(1);
  EXPECT_EQ(f.refusal(), LlmRateLimiter::Refusal::kRequestsPerHour);
  EXPECT_GT(f.retry_after(), 58min);
  EXPECT_EQ(limiter.try_acquire(1001).refusal(), LlmRateLimiter::Refusal::kTooLarge) << "never fits a day";
  const auto s = limiter.stats();
  EXPECT_EQ(s.requests_last_hour, 3);
  EXPECT_EQ(s.tokens_last_day, 750);
  EXPECT_EQ(s.rejected.at("burst"), 1);
  EXPECT_EQ(s.rejected.at("tokens_per_day"), 1);
  EXPECT_EQ(s.rejected.at("requests_per_hour"), 1);
}

TEST(LlmRateLimiter, AMonthlyTokenBudgetHoldsForThirtyDaysThenHasRoomAgain) {
  ManualClock clock;
  LlmLimits limits;
  limits.tokens_per_day = 2000;
  limits.tokens_per_month = 1000;
  LlmRateLimiter limiter("tenant:acme", limits, clock);
  limiter.try_acquire(500).complete(500);
  clock.advance(std::chrono::hours(25));
  limiter.try_acquire(500).complete(500);
  clock.advance(std::chrono::hours(25));
  auto held = limiter.try_acquire(100);
  EXPECT_EQ(held.refusal(), LlmRateLimiter::Refusal::kTokensPerMonth) << "1000 of 1000 in 30 days";
  EXPECT_GT(held.retry_after(), std::chrono::hours(24 * 27)) << "until the first day's tokens leave the 30 days";
  EXPECT_EQ(limiter.stats().tokens_last_month, 1000);
  clock.advance(std::chrono::hours(24 * 29));
  EXPECT_TRUE(limiter.try_acquire(100)) << "30 days after the first call its tokens are out of the window";
  EXPECT_EQ(limiter.try_acquire(1001).refusal(), LlmRateLimiter::Refusal::kTooLarge);
}

TEST(LlmRateLimiter, ACancelledLeaseTakesBackItsRequestAndTokens) {
  ManualClock clock;
  LlmRateLimiter limiter("cancel", {1, 500, 1}, clock);
  auto a = limiter.try_acquire(400);
  ASSERT_TRUE(a);
  a.cancel();  // another limit refused the call: it was never made
  auto b = limiter.try_acquire(500);
  EXPECT_TRUE(b) << "the request and the 400 tokens came back";
  EXPECT_EQ(limiter.stats().admitted, 1);
}

TEST(LlmRateLimiter, TheServersCountComesBackAsOurOwnCallsLeaveItsWindowAndAnswersCountCallsStillOut) {
  ManualClock clock;
  LlmLimits unpaced;  // the room alone, without pacing
  unpaced.pace = false;
  LlmRateLimiter limiter("provider", unpaced, clock);
  // Six calls, one a second; the last one's answer says none are left, for a 10 s window (its
  // reset: the time until the newest call leaves).
  TimePoint last;
  for (int i = 0; i < 6; ++i) {
    auto lease = limiter.try_acquire(10);
    last = lease.admitted_at();
    lease.complete(10);
    if (i < 5) clock.advance(1s);
  }
  RateLimitFeedback told;
  told.remaining_requests = 0;
  told.limit_requests = 6;
  told.reset_requests = std::chrono::seconds(10);
  limiter.on_answer(told, last, 10);
  const auto refused = limiter.try_acquire(10);
  EXPECT_EQ(refused.refusal(), LlmRateLimiter::Refusal::kBackoff) << "nothing left now";
  EXPECT_GT(refused.retry_after(), 5s) << "room comes back when the first call leaves the window (10 s after it)";
  EXPECT_LT(refused.retry_after(), 5500ms) << "...not only at the reset";
  clock.advance(refused.retry_after());
  EXPECT_TRUE(limiter.try_acquire(10)) << "the first call left: one more";
  EXPECT_FALSE(limiter.try_acquire(10)) << "the second leaves a second later";
  clock.advance(1s);
  EXPECT_TRUE(limiter.try_acquire(10));
  EXPECT_FALSE(limiter.try_acquire(10));

  // An answer's count was taken when its call arrived: the other calls out since are not in it.
  LlmRateLimiter fresh("provider", unpaced, clock);
  auto a = fresh.try_acquire(10);
  auto b = fresh.try_acquire(10);
  auto c = fresh.try_acquire(10);
  RateLimitFeedback answer;
  answer.remaining_requests = 3;
  answer.reset_requests = std::chrono::seconds(10);
  fresh.on_answer(answer, a.admitted_at(), 10);
  EXPECT_TRUE(fresh.try_acquire(10)) << "3 told, less the 2 others admitted with it: 1";
  EXPECT_FALSE(fresh.try_acquire(10));
}

TEST(LlmRateLimiter, AnotherClientsShareOfTheAllowanceIsLeftToItUntilTheServersReset) {
  ManualClock clock;
  LlmLimits unpaced;  // the room alone, without pacing
  unpaced.pace = false;
  LlmRateLimiter limiter("provider", unpaced, clock);
  // Two of our calls; the second's answer: 4 of 10 left in a 10 s window. Ours are 2 of the 6
  // used, so another client has 4.
  auto first = limiter.try_acquire(10);
  first.complete(10);
  clock.advance(1s);
  auto second = limiter.try_acquire(10);
  const auto admitted = second.admitted_at();
  second.complete(10);
  RateLimitFeedback told;
  told.remaining_requests = 4;
  told.limit_requests = 10;
  told.reset_requests = std::chrono::seconds(10);
  limiter.on_answer(told, admitted, 10);
  std::vector<LlmRateLimiter::Lease> more;
  while (auto lease = limiter.try_acquire(10)) more.push_back(std::move(lease));
  EXPECT_EQ(more.size(), 4u) << "10 less the other client's 4 and our 2";
  // Our first call leaves the window 10 s after it: one more. The other client's calls are
  // taken as theirs until the reset the server gave (10 s after the answered call).
  clock.advance(9s + 300ms);
  EXPECT_TRUE(limiter.try_acquire(10)) << "our first call left";
  EXPECT_FALSE(limiter.try_acquire(10));
  clock.advance(1s);
  EXPECT_TRUE(limiter.try_acquire(10)) << "past the reset: the other client's share is free";
}

TEST(LlmRateLimiter, OnceTheProvidersAllowanceAndWindowAreKnownCallsAreSpreadEvenlyOverIt) {
  ManualClock clock;
  LlmRateLimiter limiter("provider", {}, clock);
  auto first = limiter.try_acquire(10);
  ASSERT_TRUE(first);
  EXPECT_TRUE(limiter.try_acquire(10)) << "nothing known yet: no pacing";
  RateLimitFeedback told;
  told.remaining_requests = 8;
  told.limit_requests = 10;
  told.reset_requests = std::chrono::seconds(10);
  limiter.on_answer(told, first.admitted_at(), 10);
  // 10 calls per 10 s: one a second, each up to half a second early.
  EXPECT_TRUE(limiter.try_acquire(10)) << "the first paced call";
  const auto paced = limiter.try_acquire(10);
  EXPECT_EQ(paced.refusal(), LlmRateLimiter::Refusal::kPace);
  EXPECT_EQ(paced.retry_after(), std::chrono::milliseconds(500));
  clock.advance(std::chrono::milliseconds(600));  // came back 100 ms late
  EXPECT_TRUE(limiter.try_acquire(10));
  const auto next = limiter.try_acquire(10);
  EXPECT_EQ(next.retry_after(), std::chrono::milliseconds(900))
      << "due on the schedule, not an interval after the late call";
  EXPECT_EQ(limiter.stats().rejected["pace"], 2);
}
}  // namespace
}  // namespace agentline::devfix
