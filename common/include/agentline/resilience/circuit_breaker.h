#pragma once
// A circuit breaker guards one backend. Callers ask it for a Permit before each call and tell
// the permit how the call went; the breaker trips when too many of the recent calls failed or
// were slow, rejects calls while OPEN, and lets a few probes through (HALF_OPEN) after a wait.
//
//   CLOSED ──(failure or slow-call rate ≥ threshold, after minimum_calls)──► OPEN
//   OPEN ──(open_wait elapsed; the next try_acquire)──► HALF_OPEN
//   HALF_OPEN ──(half_open_successes_to_close successes)──► CLOSED
//   HALF_OPEN ──(any failure or slow call)──► OPEN (the wait grows by open_wait_multiplier)
//   FORCED_OPEN rejects everything and DISABLED admits everything, until reset().
//
// Permits are RAII leases. A permit destroyed without an outcome counts as "ignored" and gives
// its probe slot back, so a lost probe can never wedge the breaker in HALF_OPEN. Outcomes of
// permits taken before a state change are ignored (each state change starts a generation).
//
// Thread safety: every member is safe to call concurrently. try_acquire and the outcome of a
// CLOSED-state permit take no lock and allocate nothing (count-based window without slow-call
// timing: no atomic write at all while the window holds only successes). State changes take
// a mutex and call the listeners in order, under it: listeners must not call
// force_open/disable/reset on the same breaker.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agentline/resilience/clock.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::resilience {

enum class BreakerState : std::uint8_t { kClosed, kOpen, kHalfOpen, kForcedOpen, kDisabled };
inline constexpr int kBreakerStateCount = 5;
std::string_view to_string(BreakerState state);

struct CircuitBreakerConfig {
  enum class Window { kCountBased, kTimeBased };
  Window window = Window::kCountBased;
  // Calls (count-based) or seconds (time-based) in the sliding window.
  int window_size = 100;
  // The rates are not evaluated before the window holds this many calls.
  int minimum_calls = 20;
  double failure_rate_threshold = 50.0;     // percent of calls in the window
  double slow_call_rate_threshold = 100.0;  // percent of calls in the window
  // A call that took at least this long is slow. Zero turns slow-call tracking off, and with
  // a count-based window the breaker then never reads the clock while CLOSED.
  Duration slow_call_duration = std::chrono::seconds(60);
  Duration open_wait = std::chrono::seconds(30);
  // Each consecutive re-open multiplies the wait (1.0: constant), up to max_open_wait.
  double open_wait_multiplier = 1.0;
  Duration max_open_wait = std::chrono::minutes(5);
  int half_open_max_probes = 1;  // probes admitted at the same time
  int half_open_successes_to_close = 3;

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

class CircuitBreaker {
 public:
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { ignore(); }

    // False: the call was refused (the breaker is OPEN or FORCED_OPEN, or all probes are out).
    explicit operator bool() const { return breaker_ != nullptr; }
    bool is_probe() const { return probe_; }

    // Record the outcome; the first call counts, later ones do nothing. Without `elapsed` the
    // breaker measures the time since try_acquire when slow-call tracking is on.
    void success();
    void failure();
    void success(Duration elapsed);
    void failure(Duration elapsed);
    // Neither success nor failure (a cancelled call, a caller error): frees the permit.
    void ignore();

   private:
    friend class CircuitBreaker;
    Permit(CircuitBreaker* breaker, std::uint32_t generation, bool probe, TimePoint start)
        : breaker_(breaker), generation_(generation), probe_(probe), start_(start) {}
    CircuitBreaker* breaker_ = nullptr;
    std::uint32_t generation_ = 0;
    bool probe_ = false;
    TimePoint start_{};
  };

  struct Snapshot {
    BreakerState state = BreakerState::kClosed;
    double failure_rate = -1;    // percent; -1 while the window holds fewer than minimum_calls
    double slow_call_rate = -1;  // percent; -1 likewise
    std::int64_t window_calls = 0;
    std::int64_t window_failures = 0;
    std::int64_t window_slow = 0;
    std::int64_t failed_calls = 0;  // totals since construction (successes: see record())
    std::int64_t slow_calls = 0;
    std::int64_t not_permitted_calls = 0;
    std::int64_t ignored_calls = 0;
    std::int64_t times_opened = 0;
    std::int64_t transitions = 0;
    int probes_in_flight = 0;
    Duration open_remaining{0};  // until the next probe may go, while OPEN
  };

  using Listener = std::function<void(const CircuitBreaker&, BreakerState from, BreakerState to)>;

  // Throws std::invalid_argument if the config is invalid. The clock must outlive the breaker.
  CircuitBreaker(std::string name, CircuitBreakerConfig config, const Clock& clock = SystemClock::instance());
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // A permit, or a refused one (false) while OPEN/FORCED_OPEN or when the probes are all out.
  Permit try_acquire();

  BreakerState state() const;
  // While OPEN: how long until a probe may go (a Retry-After for callers); zero otherwise.
  Duration retry_after() const;
  Snapshot snapshot() const;
  const std::string& name() const { return name_; }
  const CircuitBreakerConfig& config() const { return config_; }

  void force_open();
  void disable();
  // Back to CLOSED with an empty window (also ends FORCED_OPEN and DISABLED).
  void reset();

  void add_listener(Listener listener);

  // Prometheus samples of this breaker, labelled breaker="<name>" (see CircuitBreakerRegistry).
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  struct Window;
  void record(const Permit& permit, bool failed, Duration elapsed, bool timed);
  void release_probe(std::uint32_t generation);
  bool transition(std::uint32_t from_generation, BreakerState from, BreakerState to);
  void transition_any(BreakerState to);
  void apply_locked(std::uint64_t observed, BreakerState to);
  void evaluate(std::uint32_t generation, std::int64_t calls, std::int64_t failures, std::int64_t slow);
  bool timing() const { return timing_; }

  const std::string name_;
  const CircuitBreakerConfig config_;
  const Clock& clock_;
  const bool timing_;
  // [generation:32 | successes:12 | probes:12 | state:8], changed by CAS.
  std::atomic<std::uint64_t> word_;
  std::atomic<std::int64_t> open_until_ns_{0};
  std::unique_ptr<Window> window_;
  int consecutive_opens_ = 0;  // guarded by transition_mu_
  mutable std::mutex transition_mu_;
  std::vector<Listener> listeners_;  // guarded by transition_mu_

  std::atomic<std::int64_t> failed_{0};
  std::atomic<std::int64_t> slow_{0};
  std::atomic<std::int64_t> not_permitted_{0};
  std::atomic<std::int64_t> ignored_{0};
  std::atomic<std::int64_t> times_opened_{0};
  std::array<std::array<std::atomic<std::int64_t>, kBreakerStateCount>, kBreakerStateCount> transitions_{};
};

// One breaker per backend name, created on first use with the registry's default config or a
// per-name override. References stay valid for the registry's lifetime. Thread-safe.
class CircuitBreakerRegistry {
 public:
  explicit CircuitBreakerRegistry(CircuitBreakerConfig defaults = {}, const Clock& clock = SystemClock::instance());
  ~CircuitBreakerRegistry();

  // Must be called before the breaker is first used; throws std::invalid_argument on a bad config.
  void configure(const std::string& name, CircuitBreakerConfig config);
  CircuitBreaker& get(const std::string& name);
  // Called on every state change of every breaker of the registry (present and future).
  void add_listener(CircuitBreaker::Listener listener);
  std::vector<std::string> names() const;

  // agentline_breaker_* samples of every breaker.
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  const CircuitBreakerConfig defaults_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, CircuitBreakerConfig> overrides_;
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;
  std::vector<CircuitBreaker::Listener> listeners_;
};

}  // namespace agentline::resilience
