// GET /api/dashboard's document from the services' /readyz and /metrics (services/gateway/dashboard.h).
#include "dashboard.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace agentline::gateway {
namespace {

TEST(Dashboard, HealthAlertsCacheRateLimitingAndPerformanceComeFromTheScrapes) {
  std::map<std::string, ServiceScrape> scrapes;
  scrapes["dev-fix-worker"] = {200, R"(# HELP agentline_tasks_generated_total Tasks
# TYPE agentline_tasks_generated_total counter
agentline_tasks_generated_total{kind="dev",outcome="completed"} 70
agentline_tasks_generated_total{kind="dev",outcome="cached"} 20
agentline_tasks_generated_total{kind="dev",outcome="failed"} 10
agentline_llm_call_seconds_sum 35
agentline_llm_call_seconds_count 70
agentline_llm_tokens_total{kind="prompt"} 7000
agentline_llm_tokens_total{kind="completion"} 3500
agentline_llm_cost_usd_total 0.42
agentline_cache_requests_total{cache="generations",result="hit"} 20
agentline_cache_requests_total{cache="generations",result="miss"} 80
agentline_cache_entries{cache="generations"} 80
agentline_concurrency_limit{limiter="llm-openai"} 6
agentline_ratelimit_rejections_total{limiter="llm-openai",reason="tokens_per_day"} 3
agentline_tenant_throttled_total 4
agentline_breaker_state{breaker="llm-openai",state="open"} 1
agentline_breaker_state{breaker="llm-openai",state="closed"} 0
agentline_consumer_held{group="dev-fix-worker"} 1
process_start_time_seconds 1000
)"};
  scrapes["dlq-escalator"] = {200, "agentline_dlq_stored_records 2\n"};
  scrapes["router"] = {503, ""};
  scrapes["qa-worker"] = {0, ""};
  const auto d = summarize_dashboard(scrapes, 1000 + 2 * 3600);

  EXPECT_EQ(d["health"]["ready"], 2);
  EXPECT_EQ(d["health"]["total"], 4);
  EXPECT_EQ(d["health"]["services"]["router"]["status"], 503);
  std::set<std::string> alerts;
  for (const auto& a : d["alerts"])
    alerts.insert(a["alert"].get<std::string>() + "@" + a["service"].get<std::string>());
  EXPECT_EQ(alerts, (std::set<std::string>{"ServiceNotReady@router", "ServiceNotReady@qa-worker",
                                           "CircuitBreakerOpen@dev-fix-worker", "ConsumptionHeld@dev-fix-worker",
                                           "DeadLetters@dlq-escalator"}));
  EXPECT_DOUBLE_EQ(d["cache"]["hit_rate"].get<double>(), 0.2);
  EXPECT_EQ(d["rate_limiting"]["concurrency_limit"], 6);
  EXPECT_EQ(d["rate_limiting"]["rejections"]["tokens_per_day"], 3);
  EXPECT_EQ(d["rate_limiting"]["tenant_waits"], 4);
  EXPECT_TRUE(d["rate_limiting"]["consumption_held"].get<bool>());
  const auto& p = d["performance"];
  EXPECT_EQ(p["generations"], 100);
  EXPECT_DOUBLE_EQ(p["success_rate"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(p["average_call_seconds"].get<double>(), 0.5);
  EXPECT_EQ(p["prompt_tokens"], 7000);
  EXPECT_DOUBLE_EQ(p["cost_usd"].get<double>(), 0.42);
  EXPECT_DOUBLE_EQ(p["throughput_per_hour"].get<double>(), 50) << "100 generations in the 2 h since it started";
}

TEST(Dashboard, ServiceUrlsAreNamePairsOfHttpAddresses) {
  const auto urls = parse_service_urls("router=http://127.0.0.1:9402/,qa-worker=http://qa:9400");
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(urls[0].name, "router");
  EXPECT_EQ(urls[0].url, "http://127.0.0.1:9402");
  EXPECT_TRUE(parse_service_urls("").empty());
  EXPECT_THROW(parse_service_urls("router"), std::invalid_argument);
  EXPECT_THROW(parse_service_urls("=http://x"), std::invalid_argument);
  EXPECT_THROW(parse_service_urls("router=ftp://x"), std::invalid_argument);
}

}  // namespace
}  // namespace agentline::gateway
