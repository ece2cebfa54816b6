#include "agentline/resilience/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "agentline/observability/metric_families.h"

namespace agentline::resilience {
namespace {

// The state word: [generation:32 | successes:12 | probes:12 | state:8].
constexpr std::uint64_t kProbeUnit = std::uint64_t{1} << 8;
constexpr std::uint64_t kSuccessUnit = std::uint64_t{1} << 20;
constexpr BreakerState state_of(std::uint64_t w) { return static_cast<BreakerState>(w & 0xff); }
constexpr int probes_of(std::uint64_t w) { return static_cast<int>((w >> 8) & 0xfff); }
constexpr int successes_of(std::uint64_t w) { return static_cast<int>((w >> 20) & 0xfff); }
constexpr std::uint32_t generation_of(std::uint64_t w) { return static_cast<std::uint32_t>(w >> 32); }
constexpr std::uint64_t pack(std::uint32_t generation, BreakerState state) {
  return (std::uint64_t{generation} << 32) | static_cast<std::uint64_t>(state);
}

std::int64_t ns_of(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct Totals {
  std::int64_t calls = 0;
  std::int64_t failures = 0;
  std::int64_t slow = 0;
};

}  // namespace

std::string_view to_string(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
    case BreakerState::kForcedOpen:
      return "forced_open";
    case BreakerState::kDisabled:
      return "disabled";
  }
  return "unknown";
}

void CircuitBreakerConfig::validate() const {
  auto fail = [](const char* what) { throw std::invalid_argument(std::string("circuit breaker: ") + what); };
  if (window_size < 1) fail("window_size must be at least 1");
  if (window == Window::kCountBased && window_size > (1 << 20) - 1) fail("window_size must be below 1048576 calls");
  if (window == Window::kTimeBased && window_size > 3600) fail("a time-based window_size is at most 3600 seconds");
  if (minimum_calls < 1) fail("minimum_calls must be at least 1");
  if (!(failure_rate_threshold > 0 && failure_rate_threshold <= 100))
    fail("failure_rate_threshold must be in (0, 100]");
  if (!(slow_call_rate_threshold > 0 && slow_call_rate_threshold <= 100))
    fail("slow_call_rate_threshold must be in (0, 100]");
  if (slow_call_duration.count() < 0) fail("slow_call_duration must not be negative");
  if (open_wait.count() <= 0) fail("open_wait must be positive");
  if (!(open_wait_multiplier >= 1.0)) fail("open_wait_multiplier must be at least 1");
  if (max_open_wait < open_wait) fail("max_open_wait must be at least open_wait");
  if (half_open_max_probes < 1 || half_open_max_probes > 4000) fail("half_open_max_probes must be in [1, 4000]");
  if (half_open_successes_to_close < 1 || half_open_successes_to_close > 4000)
    fail("half_open_successes_to_close must be in [1, 4000]");
}

// The sliding window. Count-based: a ring of outcome bytes plus packed totals, updated with
// atomics only (no lock on the CLOSED hot path). Time-based: one bucket per second under a mutex
// (the clock read dominates there anyway).
struct CircuitBreaker::Window {
  static constexpr int kFailureShift = 21;
  static constexpr int kSlowShift = 42;
  static constexpr std::uint64_t kField = (std::uint64_t{1} << 21) - 1;

  explicit Window(const CircuitBreakerConfig& config)
      : time_based(config.window == CircuitBreakerConfig::Window::kTimeBased),
        size(static_cast<std::uint64_t>(config.window_size)) {
    if (time_based) {
      buckets.resize(size);
    } else {
      slots = std::make_unique<std::atomic<std::uint8_t>[]>(size);
      for (std::uint64_t i = 0; i < size; ++i) slots[i].store(0, std::memory_order_relaxed);
    }
  }

  // index mod size without a division (Lemire's fastmod; a 64-bit div costs ~15 ns here). The
  // index wraps at 2^32: once per 4 billion calls one slot is reused early, which keeps the
  // totals exact (the swap accounts for whatever the slot held).
  std::uint64_t slot_of(std::uint64_t sequence) const {
    const auto a = static_cast<std::uint32_t>(sequence);
    const std::uint64_t low = fastmod_m * a;
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(low) * size) >> 64);
  }

  static std::uint64_t contribution(std::uint8_t v) {
    return std::uint64_t{v & 1u} | (std::uint64_t{(v >> 1) & 1u} << kFailureShift) |
           (std::uint64_t{(v >> 2) & 1u} << kSlowShift);
  }
  static Totals decode(std::uint64_t packed) {
    return {static_cast<std::int64_t>(packed & kField), static_cast<std::int64_t>((packed >> kFailureShift) & kField),
            static_cast<std::int64_t>((packed >> kSlowShift) & kField)};
  }

  Totals add(bool failed, bool slow, TimePoint now) {
    if (time_based) {
      std::lock_guard lock(mu);
      Bucket& b = roll(now);
      b.totals.calls += 1;
      b.totals.failures += failed ? 1 : 0;
      b.totals.slow += slow ? 1 : 0;
      return sum_locked(now);
    }
    if (!failed && !slow) {
      // A full window of successes: another success changes nothing, and since every slot
      // holds the same outcome their order does not matter either. No write at all.
      const Totals t = decode(packed.load(std::memory_order_acquire));
      if (t.failures == 0 && t.slow == 0 && static_cast<std::uint64_t>(t.calls) == size) return t;
    }
    const auto v = static_cast<std::uint8_t>(1u | (failed ? 2u : 0u) | (slow ? 4u : 0u));
    const std::uint64_t index = slot_of(head.fetch_add(1, std::memory_order_relaxed));
    // The steady state (a full window of successes replacing successes) changes nothing: one
    // atomic increment and a load. Otherwise swap the slot and move the totals by the difference.
    if (slots[index].load(std::memory_order_relaxed) == v) return decode(packed.load(std::memory_order_acquire));
    const std::uint8_t old = slots[index].exchange(v, std::memory_order_acq_rel);
    const std::uint64_t delta = contribution(v) - contribution(old);  // modular: exact in sum
    if (delta == 0) return decode(packed.load(std::memory_order_acquire));
    return decode(packed.fetch_add(delta, std::memory_order_acq_rel) + delta);
  }

  Totals totals(TimePoint now) const {
    if (time_based) {
      std::lock_guard lock(mu);
      return sum_locked(now);
    }
    return decode(packed.load(std::memory_order_acquire));
  }

  void clear() {
    if (time_based) {
      std::lock_guard lock(mu);
      for (auto& b : buckets) b = Bucket{};
      return;
    }
    // Exchange every slot and take its contribution out, so that a racing (stale) writer
    // still leaves slots and totals consistent.
    for (std::uint64_t i = 0; i < size; ++i) {
      const std::uint8_t old = slots[i].exchange(0, std::memory_order_acq_rel);
      if (old != 0) packed.fetch_sub(contribution(old), std::memory_order_acq_rel);
    }
  }

  struct Bucket {
    std::int64_t second = -1;
    Totals totals;
  };
  Bucket& roll(TimePoint now) {
    const std::int64_t second = ns_of(now) / 1'000'000'000;
    Bucket& b = buckets[static_cast<std::uint64_t>(second) % size];
    if (b.second != second) b = Bucket{second, {}};
    return b;
  }
  Totals sum_locked(TimePoint now) const {
    const std::int64_t second = ns_of(now) / 1'000'000'000;
    Totals t;
    for (const auto& b : buckets) {
      if (b.second > second - static_cast<std::int64_t>(size) && b.second <= second) {
        t.calls += b.totals.calls;
        t.failures += b.totals.failures;
        t.slow += b.totals.slow;
      }
    }
    return t;
  }

  const bool time_based;
  const std::uint64_t size;
  const std::uint64_t fastmod_m = ~std::uint64_t{0} / size + 1;
  std::unique_ptr<std::atomic<std::uint8_t>[]> slots;
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> packed{0};
  mutable std::mutex mu;
  std::vector<Bucket> buckets;
};

CircuitBreaker::Permit::Permit(Permit&& other) noexcept
    : breaker_(std::exchange(other.breaker_, nullptr)),
      generation_(other.generation_),
      probe_(other.probe_),
      start_(other.start_) {}

CircuitBreaker::Permit& CircuitBreaker::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    ignore();
    breaker_ = std::exchange(other.breaker_, nullptr);
    generation_ = other.generation_;
    probe_ = other.probe_;
    start_ = other.start_;
  }
  return *this;
}

void CircuitBreaker::Permit::success() {
  if (breaker_ == nullptr) return;
  CircuitBreaker* b = std::exchange(breaker_, nullptr);
  const bool timed = b->timing();
  b->record(*this, false, timed ? b->clock_.now() - start_ : Duration{0}, timed);
}

void CircuitBreaker::Permit::failure() {
  if (breaker_ == nullptr) return;
  CircuitBreaker* b = std::exchange(breaker_, nullptr);
  const bool timed = b->timing();
  b->record(*this, true, timed ? b->clock_.now() - start_ : Duration{0}, timed);
}

void CircuitBreaker::Permit::success(Duration elapsed) {
  if (breaker_ == nullptr) return;
  std::exchange(breaker_, nullptr)->record(*this, false, elapsed, true);
}

void CircuitBreaker::Permit::failure(Duration elapsed) {
  if (breaker_ == nullptr) return;
  std::exchange(breaker_, nullptr)->record(*this, true, elapsed, true);
}

void CircuitBreaker::Permit::ignore() {
  if (breaker_ == nullptr) return;
  CircuitBreaker* b = std::exchange(breaker_, nullptr);
  b->ignored_.fetch_add(1, std::memory_order_relaxed);
  if (probe_) b->release_probe(generation_);
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config, const Clock& clock)
    : name_(std::move(name)),
      config_((config.validate(), config)),
      clock_(clock),
      timing_(config_.slow_call_duration.count() > 0 || config_.window == CircuitBreakerConfig::Window::kTimeBased),
      word_(pack(0, BreakerState::kClosed)),
      window_(std::make_unique<Window>(config_)) {}

CircuitBreaker::~CircuitBreaker() = default;

CircuitBreaker::Permit CircuitBreaker::try_acquire() {
  for (;;) {
    std::uint64_t w = word_.load(std::memory_order_acquire);
    switch (state_of(w)) {
      case BreakerState::kClosed:
        return Permit(this, generation_of(w), false, timing_ ? clock_.now() : TimePoint{});
      case BreakerState::kDisabled:
        return Permit(this, generation_of(w), false, TimePoint{});
      case BreakerState::kForcedOpen:
        not_permitted_.fetch_add(1, std::memory_order_relaxed);
        return {};
      case BreakerState::kOpen:
        if (ns_of(clock_.now()) >= open_until_ns_.load(std::memory_order_acquire)) {
          transition(generation_of(w), BreakerState::kOpen, BreakerState::kHalfOpen);
          continue;
        }
        not_permitted_.fetch_add(1, std::memory_order_relaxed);
        return {};
      case BreakerState::kHalfOpen:
        if (probes_of(w) >= config_.half_open_max_probes) {
          not_permitted_.fetch_add(1, std::memory_order_relaxed);
          return {};
        }
        if (word_.compare_exchange_weak(w, w + kProbeUnit, std::memory_order_acq_rel)) {
          return Permit(this, generation_of(w), true, timing_ ? clock_.now() : TimePoint{});
        }
        continue;
    }
  }
}

void CircuitBreaker::record(const Permit& permit, bool failed, Duration elapsed, bool timed) {
  const bool slow = timed && config_.slow_call_duration.count() > 0 && elapsed >= config_.slow_call_duration;
  // Successes are not counted here: the hot path stays free of atomic writes (callers count
  // their successful calls, e.g. agentline_llm_calls_total).
  if (failed) failed_.fetch_add(1, std::memory_order_relaxed);
  if (slow) slow_.fetch_add(1, std::memory_order_relaxed);

  std::uint64_t w = word_.load(std::memory_order_acquire);
  if (generation_of(w) != permit.generation_) return;  // taken before a state change
  switch (state_of(w)) {
    case BreakerState::kClosed: {
      const TimePoint now = window_->time_based ? clock_.now() : TimePoint{};
      const Totals t = window_->add(failed, slow, now);
      evaluate(permit.generation_, t.calls, t.failures, t.slow);
      return;
    }
    case BreakerState::kHalfOpen: {
      if (!permit.probe_) return;
      if (failed || slow) {
        transition(permit.generation_, BreakerState::kHalfOpen, BreakerState::kOpen);
        return;
      }
      for (;;) {
        if (generation_of(w) != permit.generation_ || state_of(w) != BreakerState::kHalfOpen) return;
        if (word_.compare_exchange_weak(w, w - kProbeUnit + kSuccessUnit, std::memory_order_acq_rel)) break;
      }
      if (successes_of(w) + 1 >= config_.half_open_successes_to_close) {
        transition(permit.generation_, BreakerState::kHalfOpen, BreakerState::kClosed);
      }
      return;
    }
    default:
      return;
  }
}

void CircuitBreaker::release_probe(std::uint32_t generation) {
  std::uint64_t w = word_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(w) != generation || state_of(w) != BreakerState::kHalfOpen || probes_of(w) == 0) return;
    if (word_.compare_exchange_weak(w, w - kProbeUnit, std::memory_order_acq_rel)) return;
  }
}

void CircuitBreaker::evaluate(std::uint32_t generation, std::int64_t calls, std::int64_t failures, std::int64_t slow) {
  if (calls < config_.minimum_calls) return;
  const bool too_many_failures =
      static_cast<double>(failures) * 100.0 >= config_.failure_rate_threshold * static_cast<double>(calls);
  const bool too_slow =
      config_.slow_call_duration.count() > 0 &&
      static_cast<double>(slow) * 100.0 >= config_.slow_call_rate_threshold * static_cast<double>(calls);
  if (too_many_failures || too_slow) transition(generation, BreakerState::kClosed, BreakerState::kOpen);
}

bool CircuitBreaker::transition(std::uint32_t from_generation, BreakerState from, BreakerState to) {
  std::lock_guard lock(transition_mu_);
  const std::uint64_t w = word_.load(std::memory_order_acquire);
  if (generation_of(w) != from_generation || state_of(w) != from) return false;
  apply_locked(w, to);
  return true;
}

void CircuitBreaker::transition_any(BreakerState to) {
  std::lock_guard lock(transition_mu_);
  apply_locked(word_.load(std::memory_order_acquire), to);
}

void CircuitBreaker::apply_locked(std::uint64_t observed, BreakerState to) {
  const BreakerState from = state_of(observed);
  if (to == BreakerState::kOpen) {
    consecutive_opens_ = from == BreakerState::kHalfOpen ? consecutive_opens_ + 1 : 1;
    double wait =
        static_cast<double>(config_.open_wait.count()) * std::pow(config_.open_wait_multiplier, consecutive_opens_ - 1);
    wait = std::min(wait, static_cast<double>(config_.max_open_wait.count()));
    open_until_ns_.store(ns_of(clock_.now()) + static_cast<std::int64_t>(wait), std::memory_order_release);
    times_opened_.fetch_add(1, std::memory_order_relaxed);
  } else if (to == BreakerState::kClosed) {
    window_->clear();
    consecutive_opens_ = 0;
  }
  // Only the fast path changes the word outside this mutex, and only its probe and success
  // fields: retry until our view is current, then start the next generation.
  const std::uint64_t next = pack(generation_of(observed) + 1, to);
  std::uint64_t w = observed;
  while (!word_.compare_exchange_weak(w, next, std::memory_order_acq_rel)) {
  }
  transitions_[static_cast<int>(from)][static_cast<int>(to)].fetch_add(1, std::memory_order_relaxed);
  for (const auto& listener : listeners_) listener(*this, from, to);
}

BreakerState CircuitBreaker::state() const { return state_of(word_.load(std::memory_order_acquire)); }

Duration CircuitBreaker::retry_after() const {
  if (state() != BreakerState::kOpen) return Duration{0};
  const std::int64_t left = open_until_ns_.load(std::memory_order_acquire) - ns_of(clock_.now());
  return Duration{std::max<std::int64_t>(left, 0)};
}

CircuitBreaker::Snapshot CircuitBreaker::snapshot() const {
  Snapshot s;
  const std::uint64_t w = word_.load(std::memory_order_acquire);
  s.state = state_of(w);
  s.probes_in_flight = s.state == BreakerState::kHalfOpen ? probes_of(w) : 0;
  const Totals t = window_->totals(window_->time_based ? clock_.now() : TimePoint{});
  s.window_calls = t.calls;
  s.window_failures = t.failures;
  s.window_slow = t.slow;
  if (t.calls >= config_.minimum_calls) {
    s.failure_rate = 100.0 * static_cast<double>(t.failures) / static_cast<double>(t.calls);
    s.slow_call_rate = 100.0 * static_cast<double>(t.slow) / static_cast<double>(t.calls);
  }
  s.failed_calls = failed_.load(std::memory_order_relaxed);
  s.slow_calls = slow_.load(std::memory_order_relaxed);
  s.not_permitted_calls = not_permitted_.load(std::memory_order_relaxed);
  s.ignored_calls = ignored_.load(std::memory_order_relaxed);
  s.times_opened = times_opened_.load(std::memory_order_relaxed);
  for (const auto& row : transitions_)
    for (const auto& cell : row) s.transitions += cell.load(std::memory_order_relaxed);
  s.open_remaining = retry_after();
  return s;
}

void CircuitBreaker::force_open() { transition_any(BreakerState::kForcedOpen); }
void CircuitBreaker::disable() { transition_any(BreakerState::kDisabled); }
void CircuitBreaker::reset() { transition_any(BreakerState::kClosed); }

void CircuitBreaker::add_listener(Listener listener) {
  std::lock_guard lock(transition_mu_);
  listeners_.push_back(std::move(listener));
}

void CircuitBreaker::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  using prometheus::MetricType;
  const Snapshot s = snapshot();
  auto& state = family(families, "agentline_breaker_state", "1 for the breaker's current state, 0 for the others",
                       MetricType::Gauge);
  for (int i = 0; i < kBreakerStateCount; ++i) {
    const auto st = static_cast<BreakerState>(i);
    add_sample(state, {{"breaker", name_}, {"state", std::string(to_string(st))}}, st == s.state ? 1 : 0);
  }
  auto& transitions = family(families, "agentline_breaker_transitions_total", "State changes by from and to state",
                             MetricType::Counter);
  for (int from = 0; from < kBreakerStateCount; ++from) {
    for (int to = 0; to < kBreakerStateCount; ++to) {
      const auto n = transitions_[from][to].load(std::memory_order_relaxed);
      if (n == 0) continue;
      add_sample(transitions,
                 {{"breaker", name_},
                  {"from", std::string(to_string(static_cast<BreakerState>(from)))},
                  {"to", std::string(to_string(static_cast<BreakerState>(to)))}},
                 static_cast<double>(n));
    }
  }
  add_sample(family(families, "agentline_breaker_failure_rate_percent",
                    "Failed calls in the sliding window (-1 until minimum_calls)", MetricType::Gauge),
             {{"breaker", name_}}, s.failure_rate);
  add_sample(family(families, "agentline_breaker_slow_call_rate_percent",
                    "Slow calls in the sliding window (-1 until minimum_calls)", MetricType::Gauge),
             {{"breaker", name_}}, s.slow_call_rate);
  add_sample(family(families, "agentline_breaker_opened_total", "Times the breaker opened", MetricType::Counter),
             {{"breaker", name_}}, static_cast<double>(s.times_opened));
  auto& calls = family(families, "agentline_breaker_calls_total",
                       "Calls through the breaker by outcome (failure, slow, not_permitted, ignored; successes are "
                       "counted by the caller)",
                       MetricType::Counter);
  add_sample(calls, {{"breaker", name_}, {"outcome", "failure"}}, static_cast<double>(s.failed_calls));
  add_sample(calls, {{"breaker", name_}, {"outcome", "slow"}}, static_cast<double>(s.slow_calls));
  add_sample(calls, {{"breaker", name_}, {"outcome", "not_permitted"}}, static_cast<double>(s.not_permitted_calls));
  add_sample(calls, {{"breaker", name_}, {"outcome", "ignored"}}, static_cast<double>(s.ignored_calls));
}

CircuitBreakerRegistry::CircuitBreakerRegistry(CircuitBreakerConfig defaults, const Clock& clock)
    : defaults_((defaults.validate(), defaults)), clock_(clock) {}

CircuitBreakerRegistry::~CircuitBreakerRegistry() = default;

void CircuitBreakerRegistry::configure(const std::string& name, CircuitBreakerConfig config) {
  config.validate();
  std::lock_guard lock(mu_);
  if (breakers_.count(name) != 0) throw std::invalid_argument("circuit breaker '" + name + "' is already in use");
  overrides_[name] = config;
}

CircuitBreaker& CircuitBreakerRegistry::get(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = breakers_.find(name);
  if (it != breakers_.end()) return *it->second;
  auto o = overrides_.find(name);
  auto breaker = std::make_unique<CircuitBreaker>(name, o != overrides_.end() ? o->second : defaults_, clock_);
  for (const auto& listener : listeners_) breaker->add_listener(listener);
  return *breakers_.emplace(name, std::move(breaker)).first->second;
}

void CircuitBreakerRegistry::add_listener(CircuitBreaker::Listener listener) {
  std::lock_guard lock(mu_);
  for (auto& [name, breaker] : breakers_) breaker->add_listener(listener);
  listeners_.push_back(std::move(listener));
}

std::vector<std::string> CircuitBreakerRegistry::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, breaker] : breakers_) out.push_back(name);
  return out;
}

void CircuitBreakerRegistry::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, breaker] : breakers_) breaker->append_metrics(families);
}

}  // namespace agentline::resilience
