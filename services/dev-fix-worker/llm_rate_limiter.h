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
  // A tenant's budgets in dollars, per day and per 30 days. Not counted here: like a tenant's
  // tokens per day and month, they are also counted from what every replica spent (JobBudgets).
  double usd_per_day = 0;
  double usd_per_month = 0;
  // Spread calls evenly over the provider's window once its allowance and window are known.
  bool pace = true;

  // A tenant's budgets, counted from what every replica spent (JobBudgets).
  bool has_budget() const { return tokens_per_day > 0 || tokens_per_month > 0 || usd_per_day > 0 || usd_per_month > 0; }
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
    kTokensPerMonth,
    kPace  // the provider's allowance spread evenly over its window
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
  // The same for the headers of a call that succeeded, admitted at `admitted_at` with `reserved`
  // tokens: the server counted its remaining requests and tokens when the call arrived, so our
  // calls admitted since are taken off before the counts cap admissions, and room comes back as
  // our calls leave the server's window from then on.
  void on_answer(const RateLimitFeedback& feedback, TimePoint admitted_at, std::int64_t reserved);
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
  TimePoint pace_next_{};  // when the next paced call is due
  // Our own admissions (time, reserved tokens), oldest first, and the provider's window, learned:
  // the longest reset it gave (its reset is the time until the newest call leaves, so a call just
  // admitted shows the whole window). A call counts in the server's window from its admission
  // until the window plus a margin after it (the server counts it on arrival, a little later).
  struct OwnCalls {
    std::deque<std::pair<TimePoint, std::int64_t>> calls;
    Duration window{0};  // 0: not known yet
    // Our calls in the server's window at `t` (admitted by then): requests, or their tokens.
    std::int64_t counted_at(TimePoint t, bool tokens) const;
    // When our calls in the window at `now` will be down by `amount`; nullopt if never.
    std::optional<TimePoint> when_down_by(TimePoint now, std::int64_t amount, bool tokens) const;
    // Requests and tokens admitted after `from`.
    std::pair<std::int64_t, std::int64_t> since(TimePoint from) const;
    void add(TimePoint now, std::int64_t tokens);
  };
  // The server's count (x-ratelimit-*). With its allowance (limit-*) and window known, the room is
  // the allowance less our own calls in its window (OwnCalls) and the other clients' share of its
  // last count (until its reset): exact for one client, and following the others at each answer.
  // Without them, the remaining count as told, less what was admitted since, refilling linearly
  // towards the allowance by the reset (or not at all) until the reset.
  struct ServerCount {
    std::optional<std::int64_t> left;  // as told, less what was admitted since
    std::int64_t told = 0;
    std::optional<std::int64_t> limit;
    std::int64_t others = 0;  // the allowance used by other clients when told
    TimePoint at{};
    TimePoint reset{};
    // The room at `now`; nullopt: no cap (nothing told, or its reset passed without an allowance).
    std::optional<std::int64_t> room(TimePoint now, const OwnCalls& own, bool tokens) const;
    // How long until `amount` fits.
    Duration wait_for(TimePoint now, std::int64_t amount, const OwnCalls& own, bool tokens) const;
    // Told at `now`: `remaining` of the allowance, less `out` known not to be in it yet; our own
    // calls then in the window: `own_counted`.
    void tell(TimePoint now, std::int64_t remaining, std::int64_t out, Duration reset_in,
              std::optional<std::int64_t> allowance, std::int64_t own_counted);
  };
  OwnCalls own_;
  ServerCount server_requests_;
  ServerCount server_tokens_;
  std::int64_t admitted_ = 0;
  std::int64_t refunded_ = 0;
  std::map<Refusal, std::int64_t> rejected_;
};

// Turns at the backends while they refuse calls (limits spent, 429): the next call goes to the
// tenant refused longest ago, then the next, round robin. Without it, after each hold all the
// records dispatched raced for the one call that had room, and a tenant with one task waiting
// lost to a flooding tenant's many about as often as it had rivals (a trickle's task waited
// seconds behind a flood; bench/REPORT.md, "Fair tenants"). A tenant not seen again for
// kForgetAfter after it asked (or after the wait the backends asked for, if later) loses its
// turn. Thread-safe; the time comes from an injected Clock.
class TenantTurns {
 public:
  static constexpr Duration kForgetAfter = std::chrono::seconds(2);
  explicit TenantTurns(const Clock& clock = SystemClock::instance()) : clock_(clock) {}
  // Whether `tenant` may try for a call now: no other tenant is owed one before it. A tenant told
  // no waits its turn (it joins the line).
  bool may_try(const std::string& tenant);
  // The backends refused `tenant`'s call for `wait`: it is owed one (in line since the first
  // refusal).
  void refused(const std::string& tenant, Duration wait);
  // `tenant` got its call: out of the line.
  void served(const std::string& tenant);
  std::size_t waiting();

 private:
  void forget_locked(TimePoint now);
  // Seen now: its place in the line kept, or the last place taken.
  void join_locked(const std::string& tenant, TimePoint now);
  const Clock& clock_;
  std::mutex mu_;
  std::deque<std::pair<std::string, TimePoint>> line_;  // tenant, last refused or asked
  TimePoint blocked_until_{};                           // the end of the longest wait asked for
};

}  // namespace agentline::devfix
