#include "agentline/resilience/rate_limit.h"

#include <limits>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <stdexcept>

#include "agentline/observability/metric_families.h"

namespace agentline::resilience {
namespace {

std::int64_t ns_of(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

Duration seconds_f(double s) { return Duration{static_cast<std::int64_t>(std::ceil(s * 1e9))}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<std::int64_t> parse_count(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

// ---- TokenBucket ----------------------------------------------------------------------------

TokenBucket::TokenBucket(double rate_per_second, double burst, const Clock& clock)
    : clock_(clock), rate_(rate_per_second), burst_(burst), tokens_(burst), last_(clock.now()) {
  if (!(rate_per_second > 0) || !(burst >= 1))
    throw std::invalid_argument("token bucket: rate must be > 0 and burst >= 1");
}

void TokenBucket::refill_locked(TimePoint now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
}

Admission TokenBucket::try_acquire(double tokens) {
  std::lock_guard lock(mu_);
  refill_locked(clock_.now());
  if (tokens <= tokens_) {
    tokens_ -= tokens;
    return {true, {}};
  }
  if (tokens > burst_) return {false, Duration::max()};
  return {false, seconds_f((tokens - tokens_) / rate_)};
}

void TokenBucket::set_rate(double rate_per_second) {
  if (!(rate_per_second > 0)) throw std::invalid_argument("token bucket: rate must be > 0");
  std::lock_guard lock(mu_);
  refill_locked(clock_.now());
  rate_ = rate_per_second;
}

double TokenBucket::rate() const {
  std::lock_guard lock(mu_);
  return rate_;
}

double TokenBucket::available() const {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(clock_.now() - last_).count();
  return std::min(burst_, tokens_ + rate_ * std::max(0.0, elapsed));
}

// ---- WindowCounter ---------------------------------------------------------------------------

WindowCounter::WindowCounter(Duration window, int buckets)
    : window_(window),
      slice_(window / buckets),
      buckets_(buckets),
      ring_(static_cast<std::size_t>(buckets) + 1, {-1, 0}) {
  if (window.count() <= 0 || buckets < 1 || slice_.count() <= 0)
    throw std::invalid_argument("window counter: bad window");
}

std::int64_t WindowCounter::slice_of(TimePoint now) const { return ns_of(now) / slice_.count(); }

void WindowCounter::roll(std::int64_t slice) {
  auto& cell = ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))];
  if (cell.first != slice) cell = {slice, 0};
}

std::int64_t WindowCounter::sum(TimePoint now) {
  const std::int64_t current = slice_of(now);
  std::int64_t total = 0;
  for (const auto& [slice, amount] : ring_) {
    if (slice >= current - buckets_ && slice <= current) total += amount;
  }
  return total;
}

std::int64_t WindowCounter::add(TimePoint now, std::int64_t amount) {
  const std::int64_t slice = slice_of(now);
  roll(slice);
  ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))].second += amount;
  return slice;
}

void WindowCounter::refund(TimePoint now, std::int64_t slice, std::int64_t amount) {
  if (slice < slice_of(now) - buckets_) return;  // already out of the window
  auto& cell = ring_[static_cast<std::size_t>(slice % static_cast<std::int64_t>(ring_.size()))];
  if (cell.first == slice) cell.second = std::max<std::int64_t>(0, cell.second - amount);
}

Duration WindowCounter::time_until_room(TimePoint now, std::int64_t amount, std::int64_t limit) {
  std::int64_t excess = sum(now) + amount - limit;
  if (excess <= 0) return Duration{0};
  if (amount > limit) return window_;
  const std::int64_t current = slice_of(now);
  for (std::int64_t s = current - buckets_; s <= current; ++s) {
    const auto& cell = ring_[static_cast<std::size_t>(s % static_cast<std::int64_t>(ring_.size()))];
    if (cell.first != s) continue;
    excess -= cell.second;
    if (excess <= 0) {
      // Slice s leaves the sum when slice s + buckets + 1 begins.
      return Duration{(s + buckets_ + 1) * slice_.count() - ns_of(now)};
    }
  }
  return window_;
}

// ---- KeyedRateLimiter ------------------------------------------------------------------------

KeyedRateLimiter::KeyedRateLimiter(std::string name, KeyedRateLimiterConfig config, const Clock& clock)
    : name_(std::move(name)), config_(std::move(config)), clock_(clock) {
  if (!(config_.rate_per_second > 0) || !(config_.burst >= 1)) {
    throw std::invalid_argument("rate limiter '" + name_ + "': rate must be > 0 and burst >= 1");
  }
}

Admission KeyedRateLimiter::try_acquire(std::string_view key, double tokens) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= config_.max_keys) evict_idle_locked(now);
    auto o = config_.overrides.find(std::string(key));
    const double rate = o != config_.overrides.end() ? o->second.first : config_.rate_per_second;
    const double burst = o != config_.overrides.end() ? o->second.second : config_.burst;
    it = buckets_.emplace(std::string(key), Bucket{rate, burst, burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.last) {
    b.tokens = std::min(b.burst, b.tokens + b.rate * std::chrono::duration<double>(now - b.last).count());
    b.last = now;
  }
  if (tokens <= b.tokens) {
    b.tokens -= tokens;
    admitted_.fetch_add(1, std::memory_order_relaxed);
    return {true, {}};
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (tokens > b.burst) return {false, Duration::max()};
  return {false, seconds_f((tokens - b.tokens) / b.rate)};
}

void KeyedRateLimiter::evict_idle_locked(TimePoint now) {
  // A bucket that has refilled completely carries no state: dropping it changes nothing.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& b = it->second;
    const double tokens = b.tokens + b.rate * std::chrono::duration<double>(now - b.last).count();
    it = tokens >= b.burst ? buckets_.erase(it) : std::next(it);
  }
}

void KeyedRateLimiter::set_limit(const std::string& key, double rate_per_second, double burst) {
  if (!(rate_per_second > 0) || !(burst >= 1)) throw std::invalid_argument("rate must be > 0 and burst >= 1");
  std::lock_guard lock(mu_);
  config_.overrides[key] = {rate_per_second, burst};
  auto it = buckets_.find(key);
  if (it != buckets_.end()) {
    it->second.rate = rate_per_second;
    it->second.burst = burst;
    it->second.tokens = std::min(it->second.tokens, burst);
  }
}

std::size_t KeyedRateLimiter::keys() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

void KeyedRateLimiter::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  add_sample(family(families, "agentline_ratelimit_admitted_total", "Calls admitted by the limiter",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(admitted()));
  add_sample(family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}, {"reason", "key_rate"}}, static_cast<double>(rejected()));
}

// ---- SlidingWindowLimiter --------------------------------------------------------------------

SlidingWindowLimiter::SlidingWindowLimiter(std::string name, std::vector<WindowLimit> limits, const Clock& clock)
    : name_(std::move(name)), clock_(clock), limits_(std::move(limits)) {
  for (const auto& l : limits_) {
    if (l.window.count() <= 0 || l.limit <= 0) {
      throw std::invalid_argument("rate limiter '" + name_ + "': window '" + l.name +
                                  "' needs a positive length and limit");
    }
    counters_.emplace_back(l.window, 60);
  }
  rejected_.assign(limits_.size(), 0);
}

Admission SlidingWindowLimiter::try_acquire(std::int64_t amount) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    if (counters_[i].sum(now) + amount > limits_[i].limit) {
      ++rejected_[i];
      return {false, counters_[i].time_until_room(now, amount, limits_[i].limit)};
    }
  }
  for (auto& c : counters_) c.add(now, amount);
  ++admitted_;
  return {true, {}};
}

std::vector<std::pair<std::string, std::int64_t>> SlidingWindowLimiter::usage() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::int64_t>> out;
  const TimePoint now = clock_.now();
  for (std::size_t i = 0; i < limits_.size(); ++i) out.emplace_back(limits_[i].name, counters_[i].sum(now));
  return out;
}

std::int64_t SlidingWindowLimiter::rejected(const std::string& window) const {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    if (limits_[i].name == window) return rejected_[i];
  }
  return 0;
}

void SlidingWindowLimiter::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  std::lock_guard lock(mu_);
  add_sample(family(families, "agentline_ratelimit_admitted_total", "Calls admitted by the limiter",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(admitted_));
  auto& rejected = family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                          prometheus::MetricType::Counter);
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    add_sample(rejected, {{"limiter", name_}, {"reason", limits_[i].name}}, static_cast<double>(rejected_[i]));
  }
}

// ---- Bulkhead --------------------------------------------------------------------------------

Bulkhead::Bulkhead(std::string name, int max_concurrent) : name_(std::move(name)), max_(max_concurrent) {
  if (max_concurrent < 1) throw std::invalid_argument("bulkhead '" + name_ + "': max_concurrent must be at least 1");
}

Bulkhead::Lease Bulkhead::try_acquire() {
  int current = in_flight_.load(std::memory_order_acquire);
  for (;;) {
    if (current >= max_.load(std::memory_order_acquire)) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) return Lease(this);
  }
}

void Bulkhead::Lease::release() {
  if (bulkhead_ != nullptr) std::exchange(bulkhead_, nullptr)->in_flight_.fetch_sub(1, std::memory_order_acq_rel);
}

void Bulkhead::set_max(int max_concurrent) {
  if (max_concurrent < 1) throw std::invalid_argument("bulkhead '" + name_ + "': max_concurrent must be at least 1");
  max_.store(max_concurrent, std::memory_order_release);
}

void Bulkhead::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  add_sample(
      family(families, "agentline_bulkhead_in_flight", "Calls holding a bulkhead lease", prometheus::MetricType::Gauge),
      {{"bulkhead", name_}}, in_flight());
  add_sample(
      family(families, "agentline_bulkhead_max", "The bulkhead's concurrency limit", prometheus::MetricType::Gauge),
      {{"bulkhead", name_}}, max());
  add_sample(family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}, {"reason", "concurrency"}}, static_cast<double>(rejected()));
}

// ---- Feedback parsing ------------------------------------------------------------------------

std::optional<Duration> parse_go_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double total_ns = 0;
  bool any_unit = false;
  while (!text.empty()) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return std::nullopt;
    double value = 0;
    try {
      value = std::stod(std::string(text.substr(0, i)));
    } catch (...) {
      return std::nullopt;
    }
    text.remove_prefix(i);
    std::size_t u = 0;
    while (u < text.size() && std::isalpha(static_cast<unsigned char>(text[u]))) ++u;
    const std::string unit = lower(text.substr(0, u));
    text.remove_prefix(u);
    double scale = 0;
    if (unit.empty()) {
      if (any_unit || !text.empty()) return std::nullopt;
      scale = 1e9;  // plain seconds
    } else if (unit == "h") {
      scale = 3600e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "us") {
      scale = 1e3;
    } else if (unit == "ns") {
      scale = 1;
    } else {
      return std::nullopt;
    }
    any_unit = any_unit || !unit.empty();
    total_ns += value * scale;
  }
  if (total_ns > 1e9 * 86400 * 7) return std::nullopt;  // a week: not a sane limit reset
  return Duration{static_cast<std::int64_t>(total_ns)};
}

std::optional<Duration> parse_retry_after(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text.front()))) {
    auto d = parse_go_duration(text);
    if (d && text.find_first_not_of("0123456789.") == std::string_view::npos) return d;
    return std::nullopt;
  }
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  const std::time_t when = timegm(&tm);
  const auto delta = std::chrono::system_clock::from_time_t(when) - std::chrono::system_clock::now();
  return std::max(Duration{0}, std::chrono::duration_cast<Duration>(delta));
}

RateLimitFeedback RateLimitFeedback::from_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  RateLimitFeedback f;
  for (const auto& [raw_name, value] : headers) {
    const std::string name = lower(trim(raw_name));
    if (name == "retry-after-ms") {
      if (auto ms = parse_count(value)) f.retry_after = std::chrono::milliseconds(*ms);
    } else if (name == "retry-after") {
      if (!f.retry_after) f.retry_after = parse_retry_after(value);
    } else if (name == "x-ratelimit-remaining-requests") {
      f.remaining_requests = parse_count(value);
    } else if (name == "x-ratelimit-remaining-tokens") {
      f.remaining_tokens = parse_count(value);
    } else if (name == "x-ratelimit-reset-requests") {
      f.reset_requests = parse_go_duration(value);
    } else if (name == "x-ratelimit-reset-tokens") {
      f.reset_tokens = parse_go_duration(value);
    }
  }
  return f;
}

// ---- LlmRateLimiter --------------------------------------------------------------------------

std::string_view LlmRateLimiter::to_string(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNone:
      return "none";
    case Refusal::kRequests:
      return "requests_per_minute";
    case Refusal::kTokens:
      return "tokens_per_minute";
    case Refusal::kInFlight:
      return "in_flight";
    case Refusal::kBackoff:
      return "server_backoff";
    case Refusal::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

LlmRateLimiter::Lease::Lease(Lease&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)),
      refusal_(other.refusal_),
      retry_after_(other.retry_after_),
      reserved_(other.reserved_),
      slice_(other.slice_),
      admitted_at_(other.admitted_at_) {}

LlmRateLimiter::Lease& LlmRateLimiter::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    refusal_ = other.refusal_;
    retry_after_ = other.retry_after_;
    reserved_ = other.reserved_;
    slice_ = other.slice_;
    admitted_at_ = other.admitted_at_;
  }
  return *this;
}

void LlmRateLimiter::Lease::complete(std::int64_t used_tokens) {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->finish(*this, used_tokens);
}

void LlmRateLimiter::Lease::release() {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->finish(*this, std::nullopt);
}

LlmRateLimiter::LlmRateLimiter(std::string name, LlmLimits limits, const Clock& clock)
    : name_(std::move(name)),
      clock_(clock),
      limits_(limits),
      requests_(std::chrono::minutes(1), 60),
      tokens_(std::chrono::minutes(1), 60) {
  if (limits.requests_per_minute < 0 || limits.tokens_per_minute < 0 || limits.max_in_flight < 0) {
    throw std::invalid_argument("llm rate limiter '" + name_ + "': limits must not be negative");
  }
}

LlmRateLimiter::Lease LlmRateLimiter::try_acquire(std::int64_t max_tokens) {
  Lease lease;
  max_tokens = std::max<std::int64_t>(max_tokens, 0);
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  auto refuse = [&](Refusal why, Duration retry_after) {
    ++rejected_[why];
    lease.refusal_ = why;
    lease.retry_after_ = retry_after;
    return std::move(lease);
  };
  if (limits_.tokens_per_minute > 0 && max_tokens > limits_.tokens_per_minute) {
    return refuse(Refusal::kTooLarge, Duration::max());
  }
  if (now < blocked_until_) return refuse(Refusal::kBackoff, blocked_until_ - now);
  if (server_requests_left_ && now < server_requests_reset_ && *server_requests_left_ <= 0) {
    return refuse(Refusal::kBackoff, server_requests_reset_ - now);
  }
  if (server_tokens_left_ && now < server_tokens_reset_ && *server_tokens_left_ < max_tokens) {
    return refuse(Refusal::kBackoff, server_tokens_reset_ - now);
  }
  if (limits_.max_in_flight > 0 && in_flight_ >= limits_.max_in_flight) return refuse(Refusal::kInFlight, Duration{0});
  if (limits_.requests_per_minute > 0 && requests_.sum(now) + 1 > limits_.requests_per_minute) {
    return refuse(Refusal::kRequests, requests_.time_until_room(now, 1, limits_.requests_per_minute));
  }
  if (limits_.tokens_per_minute > 0 && tokens_.sum(now) + max_tokens > limits_.tokens_per_minute) {
    return refuse(Refusal::kTokens, tokens_.time_until_room(now, max_tokens, limits_.tokens_per_minute));
  }
  requests_.add(now, 1);
  lease.slice_ = tokens_.add(now, max_tokens);
  lease.reserved_ = max_tokens;
  lease.admitted_at_ = now;
  lease.limiter_ = this;
  ++in_flight_;
  ++admitted_;
  if (server_requests_left_ && now < server_requests_reset_) --*server_requests_left_;
  if (server_tokens_left_ && now < server_tokens_reset_) *server_tokens_left_ -= max_tokens;
  return lease;
}

void LlmRateLimiter::finish(Lease& lease, std::optional<std::int64_t> used_tokens) {
  std::lock_guard lock(mu_);
  --in_flight_;
  if (!used_tokens) return;
  const TimePoint now = clock_.now();
  const std::int64_t used = std::max<std::int64_t>(*used_tokens, 0);
  if (used < lease.reserved_) {
    tokens_.refund(now, lease.slice_, lease.reserved_ - used);
    refunded_ += lease.reserved_ - used;
  } else if (used > lease.reserved_) {
    tokens_.add(now, used - lease.reserved_);  // the server counted it: so do we
  }
}

void LlmRateLimiter::on_feedback(const RateLimitFeedback& feedback) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  if (feedback.retry_after) blocked_until_ = std::max(blocked_until_, now + *feedback.retry_after);
  if (feedback.remaining_requests && feedback.reset_requests) {
    server_requests_left_ = feedback.remaining_requests;
    server_requests_reset_ = now + *feedback.reset_requests;
  }
  if (feedback.remaining_tokens && feedback.reset_tokens) {
    server_tokens_left_ = feedback.remaining_tokens;
    server_tokens_reset_ = now + *feedback.reset_tokens;
  }
}

void LlmRateLimiter::set_limits(LlmLimits limits) {
  std::lock_guard lock(mu_);
  limits_ = limits;
}

LlmRateLimiter::Stats LlmRateLimiter::stats() {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  Stats s;
  s.admitted = admitted_;
  for (const auto& [why, n] : rejected_) s.rejected[std::string(to_string(why))] = n;
  s.in_flight = in_flight_;
  s.requests_in_window = requests_.sum(now);
  s.tokens_in_window = tokens_.sum(now);
  s.tokens_refunded = refunded_;
  s.backoff_remaining = now < blocked_until_ ? blocked_until_ - now : Duration{0};
  return s;
}

void LlmRateLimiter::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  auto* self = const_cast<LlmRateLimiter*>(this);  // stats() rolls the windows; logically const
  const Stats s = self->stats();
  add_sample(family(families, "agentline_ratelimit_admitted_total", "Calls admitted by the limiter",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(s.admitted));
  auto& rejected = family(families, "agentline_ratelimit_rejections_total", "Calls refused by the limiter, by reason",
                          prometheus::MetricType::Counter);
  for (const auto& [why, n] : s.rejected)
    add_sample(rejected, {{"limiter", name_}, {"reason", why}}, static_cast<double>(n));
  add_sample(family(families, "agentline_ratelimit_in_flight", "Admitted calls not yet finished",
                    prometheus::MetricType::Gauge),
             {{"limiter", name_}}, static_cast<double>(s.in_flight));
  auto& usage = family(families, "agentline_ratelimit_window_usage", "Requests and tokens counted in the last minute",
                       prometheus::MetricType::Gauge);
  add_sample(usage, {{"limiter", name_}, {"dimension", "requests"}}, static_cast<double>(s.requests_in_window));
  add_sample(usage, {{"limiter", name_}, {"dimension", "tokens"}}, static_cast<double>(s.tokens_in_window));
  // The limits beside the usage, so "quota used" is one division in PromQL; +Inf when unlimited.
  LlmLimits limits;
  {
    std::lock_guard lock(self->mu_);
    limits = limits_;
  }
  auto limit_of = [](std::int64_t v) {
    return v > 0 ? static_cast<double>(v) : std::numeric_limits<double>::infinity();
  };
  auto& limit = family(families, "agentline_ratelimit_window_limit",
                       "Requests and tokens allowed per minute (+Inf: no limit)", prometheus::MetricType::Gauge);
  add_sample(limit, {{"limiter", name_}, {"dimension", "requests"}}, limit_of(limits.requests_per_minute));
  add_sample(limit, {{"limiter", name_}, {"dimension", "tokens"}}, limit_of(limits.tokens_per_minute));
  add_sample(family(families, "agentline_ratelimit_tokens_refunded_total", "Reserved tokens the responses did not use",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(s.tokens_refunded));
}

}  // namespace agentline::resilience
