#include "progress_feed.h"

#include <malloc.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/observability/health.h"
#include "agentline/observability/metric_registration.h"
#include "agentline/service/stop_signal.h"
#include "progress_view.h"

namespace agentline::gateway {

void feed_progress(const kafka::KafkaSettings& settings, const std::string& topic, ProgressView& view,
                   prometheus::Registry& registry, observability::HealthState& health) {
  health.set_condition("jobs_progress", false, "reading jobs.progress");
  kafka::TopicFollower follower(settings, topic, "agentline-gateway");
  auto& delay = observability::histogram(registry, "agentline_gateway_progress_delay_seconds",
                                         "From the router writing a jobs.progress record to the gateway applying it")
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  std::atomic<bool> following{false};
  auto apply = [&](const kafka::InboundRecord& r) {
    view.apply(r);
    if (following.load() && r.timestamp_ms > 0)
      delay.Observe(std::max(0.0, static_cast<double>(events::now_ms() - r.timestamp_ms) / 1000.0));
  };
  while (!service::stop_requested()) {
    health.beat();
    try {
      const auto n = follower.catch_up(apply, std::chrono::seconds(10));
      spdlog::info("read {} records of {}: {} jobs", n, topic, view.size());
      break;
    } catch (const std::exception& e) {
      spdlog::warn("cannot read {} yet: {}", topic, e.what());
    }
  }
  following = true;
  follower.follow(apply);
  health.set_condition("jobs_progress", true);
  std::size_t jobs_held = view.size();
  while (!service::stop_requested()) {
    health.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::size_t held = view.size();
#ifdef __GLIBC__
    if (held < jobs_held) malloc_trim(0);
#endif
    jobs_held = held;
  }
  follower.stop();
}

}  // namespace agentline::gateway
