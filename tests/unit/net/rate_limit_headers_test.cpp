#include "agentline/net/rate_limit_headers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

namespace agentline::net {
namespace {

using namespace std::chrono_literals;
using Duration = std::chrono::nanoseconds;

TEST(GoDuration, ParsesOpenAiResetValues) {
  EXPECT_EQ(parse_go_duration("1s"), Duration(1s));
  EXPECT_EQ(parse_go_duration("6m0s"), Duration(6min));
  EXPECT_EQ(parse_go_duration("20ms"), Duration(20ms));
  EXPECT_EQ(parse_go_duration("1h2m3.5s"), Duration(1h + 2min + 3500ms));
  EXPECT_EQ(parse_go_duration("7"), Duration(7s));
  EXPECT_EQ(parse_go_duration("0.5"), Duration(500ms));
  EXPECT_FALSE(parse_go_duration(""));
  EXPECT_FALSE(parse_go_duration("soon"));
  EXPECT_FALSE(parse_go_duration("5 parsecs"));
  EXPECT_FALSE(parse_go_duration("99999999h")) << "absurd values are ignored";
}

TEST(RetryAfter, SecondsOrHttpDate) {
  EXPECT_EQ(parse_retry_after("120"), Duration(120s));
  EXPECT_EQ(parse_retry_after(" 3 "), Duration(3s));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Duration(0)) << "a date in the past";
  auto future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT");
  ASSERT_TRUE(future);
  EXPECT_GT(*future, Duration(24h * 365 * 50));
  EXPECT_FALSE(parse_retry_after("tomorrow"));
  EXPECT_FALSE(parse_retry_after("12abc"));
}

TEST(RateLimitFeedback, ReadsOpenAiAndAzureHeaders) {
  auto f = RateLimitFeedback::from_headers({{"Retry-After", "2"},
                                            {"retry-after-ms", "1500"},
                                            {"X-RateLimit-Remaining-Requests", "0"},
                                            {"x-ratelimit-reset-requests", "6m0s"},
                                            {"x-ratelimit-remaining-tokens", "149000"},
                                            {"x-ratelimit-reset-tokens", "400ms"},
                                            {"x-ratelimit-limit-tokens", "garbage"}});
  EXPECT_EQ(f.retry_after, Duration(1500ms)) << "retry-after-ms is the more precise one";
  EXPECT_EQ(f.remaining_requests, 0);
  EXPECT_EQ(f.reset_requests, Duration(6min));
  EXPECT_EQ(f.remaining_tokens, 149000);
  EXPECT_EQ(f.reset_tokens, Duration(400ms));
  auto junk = RateLimitFeedback::from_headers({{"x-ratelimit-remaining-tokens", "-5"}, {"retry-after", "later"}});
  EXPECT_FALSE(junk.remaining_tokens);
  EXPECT_FALSE(junk.retry_after);
}

}  // namespace
}  // namespace agentline::net
