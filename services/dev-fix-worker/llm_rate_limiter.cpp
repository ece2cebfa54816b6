#include "llm_rate_limiter.h"

#include <algorithm>
#include <limits>

#include "agentline/observability/metric_families.h"

namespace agentline::devfix {

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
    case Refusal::kBurst:
      return "burst";
    case Refusal::kRequestsPerHour:
      return "requests_per_hour";
    case Refusal::kTokensPerDay:
      return "tokens_per_day";
    case Refusal::kTokensPerMonth:
      return "tokens_per_month";
    case Refusal::kPace:
      return "pace";
  }
  return "unknown";
}

LlmRateLimiter::Lease::Lease(Lease&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)),
      refusal_(other.refusal_),
      retry_after_(other.retry_after_),
      reserved_(other.reserved_),
      slice_(other.slice_),
      day_slice_(other.day_slice_),
      month_slice_(other.month_slice_),
      request_slices_{other.request_slices_[0], other.request_slices_[1], other.request_slices_[2]},
      admitted_at_(other.admitted_at_) {}

LlmRateLimiter::Lease& LlmRateLimiter::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    refusal_ = other.refusal_;
    retry_after_ = other.retry_after_;
    reserved_ = other.reserved_;
    slice_ = other.slice_;
    day_slice_ = other.day_slice_;
    month_slice_ = other.month_slice_;
    std::copy(std::begin(other.request_slices_), std::end(other.request_slices_), request_slices_);
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

void LlmRateLimiter::Lease::cancel() {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->finish(*this, 0, true);
}

LlmRateLimiter::LlmRateLimiter(std::string name, LlmLimits limits, const Clock& clock)
    : name_(std::move(name)),
      clock_(clock),
      limits_(limits),
      requests_(std::chrono::minutes(1), 60),
      tokens_(std::chrono::minutes(1), 60),
      burst_(std::chrono::seconds(1), 20),
      requests_hour_(std::chrono::hours(1), 60),
      tokens_day_(std::chrono::hours(24), 96),
      tokens_month_(std::chrono::hours(24 * 30), 120) {
  if (limits.requests_per_minute < 0 || limits.tokens_per_minute < 0 || limits.max_in_flight < 0 ||
      limits.requests_per_hour < 0 || limits.tokens_per_day < 0 || limits.burst < 0 || limits.tokens_per_month < 0) {
    throw std::invalid_argument("llm rate limiter '" + name_ + "': limits must not be negative");
  }
}

namespace {
// Of the linear refill the server's headers imply (before its window and allowance are known),
// the share counted on: a provider's window frees room in bursts (as its old calls leave), not
// evenly.
constexpr double kRefillShare = 0.9;
// A call leaves the server's window this long after its admission here at the latest: the server
// counts it when it arrives, a little after (our own queueing and the connection).
constexpr Duration kArrivalMargin = std::chrono::milliseconds(250);
// Calls are logged this long when the window is not known yet.
constexpr Duration kLogWithoutWindow = std::chrono::minutes(1);

template <typename Calls>
auto first_after(const Calls& calls, TimePoint t) {
  return std::upper_bound(calls.begin(), calls.end(), t, [](TimePoint x, const auto& c) { return x < c.first; });
}
}  // namespace

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
  if ((limits_.tokens_per_minute > 0 && max_tokens > limits_.tokens_per_minute) ||
      (limits_.tokens_per_day > 0 && max_tokens > limits_.tokens_per_day) ||
      (limits_.tokens_per_month > 0 && max_tokens > limits_.tokens_per_month)) {
    return refuse(Refusal::kTooLarge, Duration::max());
  }
  if (now < blocked_until_) return refuse(Refusal::kBackoff, blocked_until_ - now);
  if (const auto room = server_requests_.room(now, own_, false); room && *room < 1) {
    return refuse(Refusal::kBackoff, server_requests_.wait_for(now, 1, own_, false));
  }
  if (const auto room = server_tokens_.room(now, own_, true); room && *room < max_tokens) {
    return refuse(Refusal::kBackoff, server_tokens_.wait_for(now, max_tokens, own_, true));
  }
  // Pacing: with the provider's request allowance and window known, calls are spread evenly over
  // its window, so its room comes back evenly too. Let through in bursts, the calls that left its
  // window freed room in bursts a window later, again and again: a task arriving between them
  // waited seconds for the next (bench/REPORT.md, "Fair tenants").
  // Scheduled as GCRA: each call moves the theoretical time of the next by one interval, and a call
  // may come up to half an interval early, so the time a held call takes to come back does not
  // add up from call to call.
  Duration interval{0};
  if (limits_.pace && server_requests_.limit && *server_requests_.limit > 0 && own_.window > Duration{0}) {
    interval = own_.window / *server_requests_.limit;
    const TimePoint allowed = pace_next_ - interval / 2;
    if (now < allowed) return refuse(Refusal::kPace, allowed - now);
  }
  if (limits_.max_in_flight > 0 && in_flight_ >= limits_.max_in_flight) return refuse(Refusal::kInFlight, Duration{0});
  // Every window is checked before any is charged: admission is all or nothing.
  const struct {
    WindowCounter& counter;
    std::int64_t limit;
    std::int64_t amount;
    Refusal why;
  } windows[] = {{burst_, limits_.burst, 1, Refusal::kBurst},
                 {requests_, limits_.requests_per_minute, 1, Refusal::kRequests},
                 {requests_hour_, limits_.requests_per_hour, 1, Refusal::kRequestsPerHour},
                 {tokens_, limits_.tokens_per_minute, max_tokens, Refusal::kTokens},
                 {tokens_day_, limits_.tokens_per_day, max_tokens, Refusal::kTokensPerDay},
                 {tokens_month_, limits_.tokens_per_month, max_tokens, Refusal::kTokensPerMonth}};
  for (const auto& w : windows) {
    if (w.limit > 0 && w.counter.sum(now) + w.amount > w.limit) {
      return refuse(w.why, w.counter.time_until_room(now, w.amount, w.limit));
    }
  }
  lease.request_slices_[0] = burst_.add(now, 1);
  lease.request_slices_[1] = requests_.add(now, 1);
  lease.request_slices_[2] = requests_hour_.add(now, 1);
  lease.slice_ = tokens_.add(now, max_tokens);
  lease.day_slice_ = tokens_day_.add(now, max_tokens);
  lease.month_slice_ = tokens_month_.add(now, max_tokens);
  lease.reserved_ = max_tokens;
  lease.admitted_at_ = now;
  lease.limiter_ = this;
  ++in_flight_;
  ++admitted_;
  if (server_requests_.room(now, own_, false)) --*server_requests_.left;
  if (server_tokens_.room(now, own_, true)) *server_tokens_.left -= max_tokens;
  own_.add(now, max_tokens);
  if (interval > Duration{0}) pace_next_ = std::max(pace_next_, now) + interval;
  return lease;
}

void LlmRateLimiter::finish(Lease& lease, std::optional<std::int64_t> used_tokens, bool cancelled) {
  std::lock_guard lock(mu_);
  --in_flight_;
  if (!used_tokens) return;
  const TimePoint now = clock_.now();
  if (cancelled) {
    burst_.refund(now, lease.request_slices_[0], 1);
    requests_.refund(now, lease.request_slices_[1], 1);
    requests_hour_.refund(now, lease.request_slices_[2], 1);
    --admitted_;
  }
  const std::int64_t used = std::max<std::int64_t>(*used_tokens, 0);
  if (used < lease.reserved_) {
    tokens_.refund(now, lease.slice_, lease.reserved_ - used);
    tokens_day_.refund(now, lease.day_slice_, lease.reserved_ - used);
    tokens_month_.refund(now, lease.month_slice_, lease.reserved_ - used);
    refunded_ += lease.reserved_ - used;
  } else if (used > lease.reserved_) {
    tokens_.add(now, used - lease.reserved_);  // the server counted it: so do we
    tokens_day_.add(now, used - lease.reserved_);
    tokens_month_.add(now, used - lease.reserved_);
  }
}

void LlmRateLimiter::on_feedback(const RateLimitFeedback& feedback) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  if (feedback.retry_after) blocked_until_ = std::max(blocked_until_, now + *feedback.retry_after);
  tell_locked(now, feedback, 0, 0);  // a refusal: the calls out are in its count, or will be refused too
}

void LlmRateLimiter::tell_locked(TimePoint at, const RateLimitFeedback& feedback, std::int64_t requests_out,
                                 std::int64_t tokens_out) {
  if (feedback.remaining_requests && feedback.reset_requests) {
    own_.window = std::max(own_.window, *feedback.reset_requests);
    server_requests_.tell(at, *feedback.remaining_requests, requests_out, *feedback.reset_requests,
                          feedback.limit_requests, own_.counted_at(at, false));
  }
  if (feedback.remaining_tokens && feedback.reset_tokens) {
    own_.window = std::max(own_.window, *feedback.reset_tokens);
    server_tokens_.tell(at, *feedback.remaining_tokens, tokens_out, *feedback.reset_tokens, feedback.limit_tokens,
                        own_.counted_at(at, true));
  }
}

std::int64_t LlmRateLimiter::OwnCalls::counted_at(TimePoint t, bool tokens) const {
  std::int64_t sum = 0;
  for (auto it = first_after(calls, t - window - kArrivalMargin); it != calls.end() && it->first <= t; ++it)
    sum += tokens ? it->second : 1;
  return sum;
}

std::optional<TimePoint> LlmRateLimiter::OwnCalls::when_down_by(TimePoint now, std::int64_t amount, bool tokens) const {
  std::int64_t sum = 0;
  for (auto it = first_after(calls, now - window - kArrivalMargin); it != calls.end(); ++it) {
    sum += tokens ? it->second : 1;
    if (sum >= amount) return it->first + window + kArrivalMargin;
  }
  return std::nullopt;
}

std::pair<std::int64_t, std::int64_t> LlmRateLimiter::OwnCalls::since(TimePoint from) const {
  std::pair<std::int64_t, std::int64_t> out{0, 0};
  for (auto it = first_after(calls, from); it != calls.end(); ++it) {
    ++out.first;
    out.second += it->second;
  }
  return out;
}

void LlmRateLimiter::OwnCalls::add(TimePoint now, std::int64_t tokens) {
  calls.emplace_back(now, tokens);
  const Duration keep = std::max(window, kLogWithoutWindow) + 4 * kArrivalMargin;
  while (!calls.empty() && (calls.front().first < now - keep || calls.size() > 1000000)) calls.pop_front();
}

std::optional<std::int64_t> LlmRateLimiter::ServerCount::room(TimePoint now, const OwnCalls& own, bool tokens) const {
  if (!left) return std::nullopt;
  if (limit && own.window > Duration{0}) {
    // The allowance less our own calls still in the server's window and what the others had in
    // it when the server last told (theirs leave by its reset).
    return *limit - (now < reset ? others : 0) - own.counted_at(now, tokens);
  }
  if (now >= reset) return std::nullopt;
  std::int64_t refill = 0;
  if (limit && *limit > told && reset > at) {
    refill = static_cast<std::int64_t>(kRefillShare * static_cast<double>(*limit - told) *
                                       std::chrono::duration<double>(now - at).count() /
                                       std::chrono::duration<double>(reset - at).count());
  }
  return *left + refill;
}

Duration LlmRateLimiter::ServerCount::wait_for(TimePoint now, std::int64_t amount, const OwnCalls& own,
                                               bool tokens) const {
  const auto current = room(now, own, tokens);
  if (!current || *current >= amount) return Duration{0};
  const Duration until_reset = now < reset ? reset - now : own.window;
  if (limit && own.window > Duration{0}) {
    const auto at_room = own.when_down_by(now, amount - *current, tokens);
    return at_room ? std::clamp<Duration>(*at_room - now, Duration{1}, std::max(until_reset, Duration{1}))
                   : std::max(until_reset, Duration{1});
  }
  if (!limit || *limit <= told || reset <= at) return until_reset;
  const double per_ns = kRefillShare * static_cast<double>(*limit - told) / static_cast<double>((reset - at).count());
  const auto ns = static_cast<Duration::rep>(static_cast<double>(amount - *current) / per_ns) + 1;
  return std::min(Duration(ns), until_reset);
}

void LlmRateLimiter::ServerCount::tell(TimePoint now, std::int64_t remaining, std::int64_t out, Duration reset_in,
                                       std::optional<std::int64_t> allowance, std::int64_t own_counted) {
  if (left && now < at) return;  // an answer overtaken by a later call's: its count is older
  left = told = std::max<std::int64_t>(remaining - out, 0);
  limit = allowance;
  others = allowance ? std::max<std::int64_t>(*allowance - remaining - own_counted, 0) : 0;
  at = now;
  reset = now + reset_in;
}

void LlmRateLimiter::on_answer(const RateLimitFeedback& feedback, TimePoint admitted_at, std::int64_t reserved) {
  std::lock_guard lock(mu_);
  // The server took its count when this call arrived, just after `admitted_at`. Of its count,
  // what is not our calls then in its window is the other clients' (ServerCount::others).
  // Without the allowance, its remaining count is taken as it is, less the calls we admitted
  // since (from a margin before: one sent just ahead may have arrived after it).
  auto [requests, tokens] = own_.since(admitted_at - kArrivalMargin);
  tell_locked(admitted_at, feedback, std::max<std::int64_t>(requests - 1, 0),
              std::max<std::int64_t>(tokens - reserved, 0));  // an answer: its Retry-After is moot
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
  s.requests_last_hour = requests_hour_.sum(now);
  s.tokens_last_day = tokens_day_.sum(now);
  s.tokens_last_month = tokens_month_.sum(now);
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
  auto& usage = family(families, "agentline_ratelimit_window_usage",
                       "Requests and tokens counted in each window (minute, hour, day, month: 30 days)",
                       prometheus::MetricType::Gauge);
  add_sample(usage, {{"limiter", name_}, {"dimension", "requests"}, {"window", "minute"}},
             static_cast<double>(s.requests_in_window));
  add_sample(usage, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "minute"}},
             static_cast<double>(s.tokens_in_window));
  add_sample(usage, {{"limiter", name_}, {"dimension", "requests"}, {"window", "hour"}},
             static_cast<double>(s.requests_last_hour));
  add_sample(usage, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "day"}},
             static_cast<double>(s.tokens_last_day));
  add_sample(usage, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "month"}},
             static_cast<double>(s.tokens_last_month));
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
                       "Requests and tokens allowed per window (+Inf: no limit)", prometheus::MetricType::Gauge);
  add_sample(limit, {{"limiter", name_}, {"dimension", "requests"}, {"window", "second"}}, limit_of(limits.burst));
  add_sample(limit, {{"limiter", name_}, {"dimension", "requests"}, {"window", "minute"}},
             limit_of(limits.requests_per_minute));
  add_sample(limit, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "minute"}},
             limit_of(limits.tokens_per_minute));
  add_sample(limit, {{"limiter", name_}, {"dimension", "requests"}, {"window", "hour"}},
             limit_of(limits.requests_per_hour));
  add_sample(limit, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "day"}}, limit_of(limits.tokens_per_day));
  add_sample(limit, {{"limiter", name_}, {"dimension", "tokens"}, {"window", "month"}},
             limit_of(limits.tokens_per_month));
  add_sample(family(families, "agentline_ratelimit_tokens_refunded_total", "Reserved tokens the responses did not use",
                    prometheus::MetricType::Counter),
             {{"limiter", name_}}, static_cast<double>(s.tokens_refunded));
}

void TenantTurns::forget_locked(TimePoint now) {
  std::erase_if(line_, [&](const auto& entry) { return now - std::max(entry.second, blocked_until_) > kForgetAfter; });
}

void TenantTurns::join_locked(const std::string& tenant, TimePoint now) {
  for (auto& entry : line_) {
    if (entry.first == tenant) {
      entry.second = now;
      return;
    }
  }
  line_.emplace_back(tenant, now);
}

bool TenantTurns::may_try(const std::string& tenant) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  forget_locked(now);
  if (line_.empty()) return true;
  const bool first = line_.front().first == tenant;
  join_locked(tenant, now);
  return first;
}

void TenantTurns::refused(const std::string& tenant, Duration wait) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  blocked_until_ = std::max(blocked_until_, now + wait);
  join_locked(tenant, now);
}

void TenantTurns::served(const std::string& tenant) {
  std::lock_guard lock(mu_);
  std::erase_if(line_, [&](const auto& entry) { return entry.first == tenant; });
}

std::size_t TenantTurns::waiting() {
  std::lock_guard lock(mu_);
  forget_locked(clock_.now());
  return line_.size();
}

}  // namespace agentline::devfix
