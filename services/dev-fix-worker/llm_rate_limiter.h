#pragma once
// dev-fix-worker's limits on its LLM backend (and on each tenant): requests per second (the burst),
// minute and hour, tokens per minute, day and 30 days, and calls in flight, admitted atomically (all
// windows have room or nothing is taken), with tokens reserved up front and corrected by the
// usage the server reports, and feedback from Retry-After and x-ratelimit-* response headers. Answers at once (never
// blocks or sleeps); thread-safe; the time comes from an injected Clock.
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentline/net/rate_limit_headers.h"
#include "agentline/resilience/clock.h"
#include "agentline/resilience/window_counter.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::devfix {

using net::RateLimitFeedback;
using resilience::Clock;
using resilience::Duration;
using resilience::SystemClock;
using resilience::TimePoint;
using resilience::WindowCounter;

struct LlmLimits {  // 0: no limit
  std::int64_t requests_per_minute = 0;
  std::int64_t tokens_per_minute = 0;
  int max_in_flight = 0;
  std::int64_t requests_per_hour = 0;
  std::int64_t tokens_per_day = 0;
  std::int64_t burst = 0;             // requests in any one second
  std::int64_t tokens_per_month = 0;  // in any 30 days: a tenant's monthly budget

  bool any() const {
    return requests_per_minute > 0 || tokens_per_minute > 0 || max_in_flight > 0 || requests_per_hour > 0 ||
           tokens_per_day > 0 || burst > 0 || tokens_per_month > 0;
  }
};

class LlmRateLimiter {
 public:
  // kRequests and kTokens are the per-minute windows.
  enum class Refusal {
    kNone,
    kRequests,
    kTokens,
    kInFlight,
    kBackoff,
    kTooLarge,
    kBurst,
    kRequestsPerHour,
    kTokensPerDay,
    kTokensPerMonth
  };
  static std::string_view to_string(Refusal refusal);

  // An admitted call. Holds one in-flight slot and the reserved tokens until destroyed;
  // complete() refunds the reserved tokens the call did not use.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }

    explicit operator bool() const { return limiter_ != nullptr; }
    Refusal refusal() const { return refusal_; }
    Duration retry_after() const { return retry_after_; }
    std::int64_t reserved_tokens() const { return reserved_; }
    TimePoint admitted_at() const { return admitted_at_; }
    // The call used `used_tokens` (prompt + completion): refund the rest of the reservation
    // (or charge the excess) and free the in-flight slot.
    void complete(std::int64_t used_tokens);
    // Free the in-flight slot, keeping the whole reservation charged.
    void release();
    // The call was never made (another limit refused it): take back the request and the tokens.
    void cancel();

   private:
    friend class LlmRateLimiter;
    LlmRateLimiter* limiter_ = nullptr;
    Refusal refusal_ = Refusal::kNone;
    Duration retry_after_{0};
    std::int64_t reserved_ = 0;
    std::int64_t slice_ = 0;                      // of the minute's tokens
    std::int64_t day_slice_ = 0;                  // of the day's tokens
    std::int64_t month_slice_ = 0;                // of the 30 days' tokens
    std::int64_t request_slices_[3] = {0, 0, 0};  // of the second's, minute's and hour's requests
    TimePoint admitted_at_{};
  };

  struct Stats {
    std::int64_t admitted = 0;
    std::map<std::string, std::int64_t> rejected;  // by refusal reason
    std::int64_t in_flight = 0;
    std::int64_t requests_in_window = 0;
    std::int64_t tokens_in_window = 0;  // the minute's
    std::int64_t requests_last_hour = 0;
    std::int64_t tokens_last_day = 0;
    std::int64_t tokens_last_month = 0;  // 30 days
    std::int64_t tokens_refunded = 0;
    Duration backoff_remaining{0};
  };

  LlmRateLimiter(std::string name, LlmLimits limits, const Clock& clock = SystemClock::instance());
  // Reserve `max_tokens` (the prompt's tokens plus the completion's max_tokens). Refused if any
  // one of the request and token windows, in-flight or a server-imposed backoff has no room;
  // nothing is taken then. A reservation larger than tokens_per_minute or tokens_per_day is
  // refused as kTooLarge (it never fits).
  Lease try_acquire(std::int64_t max_tokens);
  // Apply what the server said: Retry-After blocks all admissions for that long; a remaining
  // count of zero blocks that dimension until its reset; smaller remaining counts cap what we
  // admit until the reset.
  void on_feedback(const RateLimitFeedback& feedback);
  // The same for the headers of a call that succeeded while this limiter's calls were in flight:
  // the server counted its remaining requests and tokens when the call arrived, so the calls
  // sent since are taken off (conservatively, all others in flight; `reserved` tokens each on
  // average) before the counts cap admissions.
  void on_answer(const RateLimitFeedback& feedback, std::int64_t reserved_per_call);
  void set_limits(LlmLimits limits);
  Stats stats();
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;
  const std::string& name() const { return name_; }

 private:
  void finish(Lease& lease, std::optional<std::int64_t> used_tokens, bool cancelled = false);
  // The server's remaining counts, less what is known to be out beyond them. Under mu_.
  void tell_locked(TimePoint now, const RateLimitFeedback& feedback, std::int64_t requests_out,
                   std::int64_t tokens_out);
  const std::string name_;
  const Clock& clock_;
  mutable std::mutex mu_;
  LlmLimits limits_;
  WindowCounter requests_;
  WindowCounter tokens_;
  WindowCounter burst_;
  WindowCounter requests_hour_;
  WindowCounter tokens_day_;
  WindowCounter tokens_month_;
  std::int64_t in_flight_ = 0;
  TimePoint blocked_until_{};
  // Our own admissions (time, reserved tokens), oldest first: when each leaves the provider's
  // window it frees room the server counted when it last told its remaining count. The window is
  // learned: the longest reset the server gave (its reset is the time until the newest call
  // leaves, so a call just admitted shows the whole window).
  struct OwnCalls {
    std::deque<std::pair<TimePoint, std::int64_t>> calls;
    Duration window{0};  // 0: not known yet
    // What our calls leaving the window in (from, to] free: requests, or their tokens.
    std::int64_t freed(TimePoint from, TimePoint to, bool tokens) const;
    // When what leaves after `from` adds up to `amount`; nullopt if the calls logged never do.
    std::optional<TimePoint> when_freed(TimePoint from, std::int64_t amount, bool tokens) const;
    void add(TimePoint now, std::int64_t tokens);
  };
  // The server's own count (x-ratelimit-remaining-*), valid until its reset time. Room comes
  // back as our own calls leave its window (OwnCalls), once the window is known; before that, it
  // refills linearly towards the full allowance (x-ratelimit-limit-*, when it says) by the reset;
  // without either, it stays as told until the reset.
  struct ServerCount {
    std::optional<std::int64_t> left;  // as told, less what was admitted since
    std::int64_t told = 0;
    std::optional<std::int64_t> limit;
    TimePoint at{};
    TimePoint reset{};
    // The room at `now`; nullopt: no cap (nothing told, or the reset has passed).
    std::optional<std::int64_t> room(TimePoint now, const OwnCalls& own, bool tokens) const;
    // How long until `amount` fits (the reset when no refill is known).
    Duration wait_for(TimePoint now, std::int64_t amount, const OwnCalls& own, bool tokens) const;
    void tell(TimePoint now, std::int64_t remaining, Duration reset_in, std::optional<std::int64_t> allowance);
  };
  OwnCalls own_;
  ServerCount server_requests_;
  ServerCount server_tokens_;
  std::int64_t admitted_ = 0;
  std::int64_t refunded_ = 0;
  std::map<Refusal, std::int64_t> rejected_;
};

}  // namespace agentline::devfix
