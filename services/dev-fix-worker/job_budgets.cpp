#include "job_budgets.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace agentline::devfix {

namespace {
std::string dollars(double usd) {
  char text[32];
  std::snprintf(text, sizeof text, "$%.4f", usd);
  return text;
}
}  // namespace

void JobBudgets::apply(const kafka::InboundRecord& record) {
  if (!record.key || record.key->find('/') != std::string::npos) return;  // a file's record
  const std::string& job = *record.key;
  if (record.value.find("\"budget\"") == std::string::npos) {
    // A tombstone, or a summary without a budget (none, or the job forgotten and resubmitted).
    std::lock_guard lock(mu_);
    jobs_.erase(job);
    return;
  }
  const auto summary = nlohmann::json::parse(record.value, nullptr, false);
  const auto budget = summary.is_object() ? summary.find("budget") : summary.end();
  if (!summary.is_object() || budget == summary.end() || !budget->is_object()) return;
  Spent s;
  s.max_tokens = budget->value("tokens", std::int64_t{0});
  s.max_cost_usd = budget->value("cost_usd", 0.0);
  s.exhausted = budget->value("exhausted", false);
  if (const auto usage = summary.find("usage"); usage != summary.end() && usage->is_object()) {
    s.tokens = usage->value("tokens", std::int64_t{0});
    s.cost_usd = usage->value("cost_usd", 0.0);
  }
  std::lock_guard lock(mu_);
  jobs_[job] = s;
}

std::optional<std::string> JobBudgets::exhausted(const std::string& job) const {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(job);
  if (it == jobs_.end() || !it->second.exhausted) return std::nullopt;
  const Spent& s = it->second;
  std::string why = "job " + job + " has spent its budget: " + std::to_string(s.tokens) + " tokens";
  if (s.max_tokens > 0) why += " of " + std::to_string(s.max_tokens);
  why += ", " + dollars(s.cost_usd);
  if (s.max_cost_usd > 0) why += " of " + dollars(s.max_cost_usd);
  return why + "; raise it with `agentline budget " + job + "` and replay the job's DLQ records";
}

std::size_t JobBudgets::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

}  // namespace agentline::devfix
