#include "job_budgets.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agentline/events/timestamps.h"

namespace agentline::devfix {

namespace {
std::string dollars(double usd) {
  char text[32];
  std::snprintf(text, sizeof text, "$%.4f", usd);
  return text;
}

constexpr std::chrono::hours kDay{24};
constexpr std::chrono::hours kMonth{24 * 30};
// The counters' time: the clock's, moved on by a month and a day, so that a charge up to a month old
// lies after the counters' epoch even on a clock that started recently (steady_clock since boot).
constexpr std::chrono::hours kShift{24 * 31};
std::int64_t micro(double usd) { return static_cast<std::int64_t>(std::llround(usd * 1e6)); }
}  // namespace

JobBudgets::Tenant::Tenant()
    : tokens_day(kDay, 96), tokens_month(kMonth, 120), micro_usd_day(kDay, 96), micro_usd_month(kMonth, 120) {}

JobBudgets::JobBudgets(const resilience::Clock& clock, bool count_tenants)
    : clock_(clock), count_tenants_(count_tenants) {}

void JobBudgets::apply(const kafka::InboundRecord& record) {
  if (!record.key || record.key->find('/') != std::string::npos) return;  // a file's record
  const std::string& job = *record.key;
  const bool has_budget = record.value.find("\"budget\"") != std::string::npos;
  const bool has_usage = count_tenants_ && record.value.find("\"usage\"") != std::string::npos;
  if (!has_budget) {
    // A tombstone, or a summary without a budget (none, or the job forgotten and resubmitted).
    std::lock_guard lock(mu_);
    jobs_.erase(job);
    if (record.value.empty()) charged_.erase(job);
    if (!has_usage) return;
  }
  const auto summary = nlohmann::json::parse(record.value, nullptr, false);
  if (!summary.is_object()) return;
  std::int64_t tokens = 0;
  double cost_usd = 0;
  if (const auto usage = summary.find("usage"); usage != summary.end() && usage->is_object()) {
    tokens = usage->value("tokens", std::int64_t{0});
    cost_usd = usage->value("cost_usd", 0.0);
  }
  std::lock_guard lock(mu_);
  if (count_tenants_) {
    // A job whose tasks name no tenant is the "default" tenant's, as in DevFixWorker::tenant_of.
    const auto tenant = summary.find("tenant");
    charge_locked(job, tenant != summary.end() && tenant->is_string() ? tenant->get<std::string>() : "default", tokens,
                  cost_usd, record.timestamp_ms > 0 ? record.timestamp_ms : events::now_ms());
  }
  const auto budget = summary.find("budget");
  if (budget == summary.end() || !budget->is_object()) return;
  Spent& s = jobs_[job];
  s.max_tokens = budget->value("tokens", std::int64_t{0});
  s.max_cost_usd = budget->value("cost_usd", 0.0);
  s.exhausted = budget->value("exhausted", false);
  s.tokens = tokens;
  s.cost_usd = cost_usd;
  // Calls made before the summary may be in it: only those after it are surely not.
  const std::int64_t made_at = record.timestamp_ms > 0 ? record.timestamp_ms : events::now_ms();
  while (!s.own.empty() && s.own.front().at_ms < made_at) s.own.pop_front();
}

void JobBudgets::note_budget(const std::string& job, const nlohmann::json& budget) {
  if (!budget.is_object()) return;
  std::lock_guard lock(mu_);
  if (jobs_.count(job) != 0) return;
  Spent& s = jobs_[job];
  s.max_tokens = budget.value("tokens", std::int64_t{0});
  s.max_cost_usd = budget.value("cost_usd", 0.0);
}

void JobBudgets::charge(const std::string& job, std::int64_t tokens, double cost_usd, std::int64_t at_ms) {
  if (tokens <= 0 && cost_usd <= 0) return;
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  it->second.own.push_back({at_ms, tokens, cost_usd});
}

void JobBudgets::charge_locked(const std::string& job, const std::string& tenant, std::int64_t tokens, double cost_usd,
                               std::int64_t at_ms) {
  auto& [charged_tokens, charged_usd] = charged_[job];
  const std::int64_t more_tokens = std::max<std::int64_t>(0, tokens - charged_tokens);
  const double more_usd = std::max(0.0, cost_usd - charged_usd);
  charged_tokens = std::max(charged_tokens, tokens);
  charged_usd = std::max(charged_usd, cost_usd);
  if (more_tokens == 0 && micro(more_usd) == 0) return;
  // The record's time on the counters' clock; a charge older than a window is not in it.
  const auto age = std::chrono::milliseconds(std::max<std::int64_t>(0, events::now_ms() - at_ms));
  const auto at = clock_.now() + kShift - std::chrono::duration_cast<resilience::Duration>(age);
  Tenant& t = tenants_[tenant];
  if (age < kDay) {
    t.tokens_day.add(at, more_tokens);
    t.micro_usd_day.add(at, micro(more_usd));
  }
  if (age < kMonth) {
    t.tokens_month.add(at, more_tokens);
    t.micro_usd_month.add(at, micro(more_usd));
  }
}

JobBudgets::TenantSpent JobBudgets::tenant_spent(const std::string& tenant) {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return {};
  const auto now = clock_.now() + kShift;
  Tenant& t = it->second;
  return {t.tokens_day.sum(now), t.tokens_month.sum(now), static_cast<double>(t.micro_usd_day.sum(now)) / 1e6,
          static_cast<double>(t.micro_usd_month.sum(now)) / 1e6};
}

std::optional<JobBudgets::Hold> JobBudgets::tenant_over(const std::string& tenant, const LlmLimits& limits) {
  if (!limits.has_budget()) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return std::nullopt;
  const auto now = clock_.now() + kShift;
  Tenant& t = it->second;
  std::optional<Hold> hold;
  // Spent: the window's sum reached the budget; room comes back when it is below it again. The
  // reason is written only then (`show` formats an amount).
  auto check = [&](resilience::WindowCounter& counter, std::int64_t budget, const char* what, auto show) {
    if (budget <= 0) return;
    const std::int64_t spent = counter.sum(now);
    if (spent < budget) return;
    const auto wait = counter.time_until_room(now, 1, budget);
    if (!hold || wait > hold->wait)
      hold = Hold{"tenant " + tenant + " has spent its budget of " + show(budget) + " " + what + " (" + show(spent) +
                      " spent, by every replica's calls)",
                  wait};
  };
  const auto tokens = [](std::int64_t n) { return std::to_string(n); };
  const auto usd = [](std::int64_t micro_usd) { return dollars(static_cast<double>(micro_usd) / 1e6); };
  check(t.tokens_day, limits.tokens_per_day, "tokens per day", tokens);
  check(t.tokens_month, limits.tokens_per_month, "tokens per 30 days", tokens);
  check(t.micro_usd_day, micro(limits.usd_per_day), "per day", usd);
  check(t.micro_usd_month, micro(limits.usd_per_month), "per 30 days", usd);
  return hold;
}

std::optional<std::string> JobBudgets::exhausted(const std::string& job) const {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(job);
  if (it == jobs_.end()) return std::nullopt;
  const Spent& s = it->second;
  std::int64_t tokens = s.tokens;
  double cost_usd = s.cost_usd;
  for (const Own& own : s.own) {
    tokens += own.tokens;
    cost_usd += own.cost_usd;
  }
  if (!s.exhausted && !(s.max_tokens > 0 && tokens >= s.max_tokens) &&
      !(s.max_cost_usd > 0 && cost_usd >= s.max_cost_usd))
    return std::nullopt;
  std::string why = "job " + job + " has spent its budget: " + std::to_string(tokens) + " tokens";
  if (s.max_tokens > 0) why += " of " + std::to_string(s.max_tokens);
  why += ", " + dollars(cost_usd);
  if (s.max_cost_usd > 0) why += " of " + dollars(s.max_cost_usd);
  return why + "; raise it with `agentline budget " + job + "` and replay the job's DLQ records";
}

std::size_t JobBudgets::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

}  // namespace agentline::devfix
