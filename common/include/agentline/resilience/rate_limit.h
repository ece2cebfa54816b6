#pragma once
// Rate limits. Every limiter answers at once (admitted, or refused with the time after which a
// retry may succeed); none of them blocks or sleeps. All are thread-safe and take the time from
// an injected Clock.
//
//   TokenBucket          one rate with a burst
//   KeyedRateLimiter     a token bucket per key (tenant, user), bounded in keys
//   SlidingWindowLimiter limits per window (per minute and per hour), never over-admitting
//   Bulkhead             a concurrency limit with RAII leases
//   LlmRateLimiter       requests/min + tokens/min + in-flight, admitted atomically, with
//                        reserve/refund of tokens and feedback from Retry-After and
//                        x-ratelimit-* response headers
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agentline/resilience/clock.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::resilience {

struct Admission {
  bool admitted = false;
  Duration retry_after{0};  // when refused: the earliest time a retry could be admitted
  explicit operator bool() const { return admitted; }
};

class TokenBucket {
 public:
  // `rate_per_second` tokens are added continuously up to `burst`; the bucket starts full.
  TokenBucket(double rate_per_second, double burst, const Clock& clock = SystemClock::instance());
  Admission try_acquire(double tokens = 1);
  void set_rate(double rate_per_second);  // keeps the tokens already earned
  double rate() const;
  double available() const;

 private:
  void refill_locked(TimePoint now);
  const Clock& clock_;
  mutable std::mutex mu_;
  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_;
};

// Counts an amount over a sliding window kept as `buckets` slices. It sums the current slice and
// the `buckets` before it, so any interval of one window length lies inside what it sums: a
// limit checked against sum() is never exceeded in any window (it may admit a little less).
// Not thread-safe (the limiters lock around it).
class WindowCounter {
 public:
  WindowCounter(Duration window, int buckets = 60);
  std::int64_t sum(TimePoint now);
  // Adds and returns the slice index, so that a refund can find its slice again.
  std::int64_t add(TimePoint now, std::int64_t amount);
  // Takes `amount` back from slice `slice` if it is still in the window.
  void refund(TimePoint now, std::int64_t slice, std::int64_t amount);
  // How long until sum() + amount <= limit (zero if already so; the full window if never).
  Duration time_until_room(TimePoint now, std::int64_t amount, std::int64_t limit);
  Duration window() const { return window_; }

 private:
  std::int64_t slice_of(TimePoint now) const;
  void roll(std::int64_t slice);
  Duration window_;
  Duration slice_;
  int buckets_;
  std::vector<std::pair<std::int64_t, std::int64_t>> ring_;  // (slice index, amount)
};

struct KeyedRateLimiterConfig {
  double rate_per_second = 10;
  double burst = 20;
  std::size_t max_keys = 100000;  // idle (full) buckets are dropped beyond this
  // Per-key overrides: key -> (rate_per_second, burst).
  std::map<std::string, std::pair<double, double>> overrides;
};

class KeyedRateLimiter {
 public:
  explicit KeyedRateLimiter(std::string name, KeyedRateLimiterConfig config,
                            const Clock& clock = SystemClock::instance());
  Admission try_acquire(std::string_view key, double tokens = 1);
  void set_limit(const std::string& key, double rate_per_second, double burst);
  std::size_t keys() const;
  std::int64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  std::int64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  struct Bucket {
    double rate;
    double burst;
    double tokens;
    TimePoint last;
  };
  void evict_idle_locked(TimePoint now);
  const std::string name_;
  KeyedRateLimiterConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::atomic<std::int64_t> admitted_{0};
  std::atomic<std::int64_t> rejected_{0};
};

struct WindowLimit {
  std::string name;  // "minute", "hour": the label of its rejections
  Duration window;
  std::int64_t limit;
};

class SlidingWindowLimiter {
 public:
  // Typical: {{"minute", 1min, 60}, {"hour", 1h, 1000}}. Throws std::invalid_argument on a
  // non-positive window or limit.
  SlidingWindowLimiter(std::string name, std::vector<WindowLimit> limits, const Clock& clock = SystemClock::instance());
  // Admitted only if every window has room for `amount`; then counted in all of them.
  Admission try_acquire(std::int64_t amount = 1);
  std::vector<std::pair<std::string, std::int64_t>> usage();  // (window name, current sum)
  std::int64_t rejected(const std::string& window) const;
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  const std::string name_;
  const Clock& clock_;
  std::vector<WindowLimit> limits_;
  mutable std::mutex mu_;
  std::vector<WindowCounter> counters_;
  std::vector<std::int64_t> rejected_;
  std::int64_t admitted_ = 0;
};

class Bulkhead {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept : bulkhead_(std::exchange(other.bulkhead_, nullptr)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        bulkhead_ = std::exchange(other.bulkhead_, nullptr);
      }
      return *this;
    }
    ~Lease() { release(); }
    explicit operator bool() const { return bulkhead_ != nullptr; }
    void release();

   private:
    friend class Bulkhead;
    explicit Lease(Bulkhead* b) : bulkhead_(b) {}
    Bulkhead* bulkhead_ = nullptr;
  };

  Bulkhead(std::string name, int max_concurrent);
  Lease try_acquire();
  int in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  void set_max(int max_concurrent);
  int max() const { return max_.load(std::memory_order_relaxed); }
  std::int64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  const std::string name_;
  std::atomic<int> max_;
  std::atomic<int> in_flight_{0};
  std::atomic<std::int64_t> rejected_{0};
};

// What an LLM API said about its limits in one response (OpenAI / Azure OpenAI header names).
struct RateLimitFeedback {
  std::optional<Duration> retry_after;  // Retry-After (seconds or HTTP date) or retry-after-ms
  std::optional<std::int64_t> remaining_requests;
  std::optional<std::int64_t> remaining_tokens;
  std::optional<Duration> reset_requests;  // x-ratelimit-reset-requests: "1s", "6m0s", "20ms"
  std::optional<Duration> reset_tokens;

  // Header names are matched case-insensitively; unknown headers and unparsable values are
  // ignored (a malformed header must not stop the worker).
  static RateLimitFeedback from_headers(const std::vector<std::pair<std::string, std::string>>& headers);
};

// "1s", "6m0s", "20ms", "1h2m3.5s", or plain seconds ("7", "0.5"). nullopt if unparsable.
std::optional<Duration> parse_go_duration(std::string_view text);
// Retry-After: delta-seconds or an HTTP-date (relative to the system clock). nullopt if neither.
std::optional<Duration> parse_retry_after(std::string_view text);

struct LlmLimits {
  std::int64_t requests_per_minute = 0;  // 0: no limit
  std::int64_t tokens_per_minute = 0;    // 0: no limit
  int max_in_flight = 0;                 // 0: no limit
};

class LlmRateLimiter {
 public:
  enum class Refusal { kNone, kRequests, kTokens, kInFlight, kBackoff, kTooLarge };
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

   private:
    friend class LlmRateLimiter;
    LlmRateLimiter* limiter_ = nullptr;
    Refusal refusal_ = Refusal::kNone;
    Duration retry_after_{0};
    std::int64_t reserved_ = 0;
    std::int64_t slice_ = 0;
    TimePoint admitted_at_{};
  };

  struct Stats {
    std::int64_t admitted = 0;
    std::map<std::string, std::int64_t> rejected;  // by refusal reason
    std::int64_t in_flight = 0;
    std::int64_t requests_in_window = 0;
    std::int64_t tokens_in_window = 0;
    std::int64_t tokens_refunded = 0;
    Duration backoff_remaining{0};
  };

  LlmRateLimiter(std::string name, LlmLimits limits, const Clock& clock = SystemClock::instance());
  // Reserve `max_tokens` (the prompt's tokens plus the completion's max_tokens). Refused if any
  // one of requests, tokens, in-flight or a server-imposed backoff has no room; nothing is taken
  // then. A reservation larger than tokens_per_minute is refused as kTooLarge (it never fits).
  Lease try_acquire(std::int64_t max_tokens);
  // Apply what the server said: Retry-After blocks all admissions for that long; a remaining
  // count of zero blocks that dimension until its reset; smaller remaining counts cap what we
  // admit until the reset.
  void on_feedback(const RateLimitFeedback& feedback);
  void set_limits(LlmLimits limits);
  Stats stats();
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;
  const std::string& name() const { return name_; }

 private:
  void finish(Lease& lease, std::optional<std::int64_t> used_tokens);
  const std::string name_;
  const Clock& clock_;
  mutable std::mutex mu_;
  LlmLimits limits_;
  WindowCounter requests_;
  WindowCounter tokens_;
  std::int64_t in_flight_ = 0;
  TimePoint blocked_until_{};
  // The server's own view, valid until its reset time.
  std::optional<std::int64_t> server_requests_left_;
  TimePoint server_requests_reset_{};
  std::optional<std::int64_t> server_tokens_left_;
  TimePoint server_tokens_reset_{};
  std::int64_t admitted_ = 0;
  std::int64_t refunded_ = 0;
  std::map<Refusal, std::int64_t> rejected_;
};

}  // namespace agentline::resilience
