#pragma once
// Keeps the gateway's ProgressView current: reads jobs.progress to its end (retrying until the
// broker answers; the "jobs_progress" readiness condition is false until then), then follows
// it. Measures the gateway's own lag — from the router writing a record (its Kafka timestamp)
// to the view having it, records read while catching up left out — and gives memory back to
// the system when the router's --job-retention drops jobs, so the gateway's size follows the
// jobs it holds, not the ones it has seen.
#include <string>

#include "agentline/kafka/client_config.h"

namespace prometheus {
class Registry;
}
namespace agentline::observability {
class HealthState;
}

namespace agentline::gateway {

class ProgressView;

// Until service::stop_requested().
void feed_progress(const kafka::KafkaSettings& settings, const std::string& topic, ProgressView& view,
                   prometheus::Registry& registry, observability::HealthState& health);

}  // namespace agentline::gateway
