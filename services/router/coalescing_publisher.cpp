#include "coalescing_publisher.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "agentline/observability/metric_registration.h"

namespace agentline::router {
namespace {

prometheus::Family<prometheus::Counter>& records(prometheus::Registry& registry) {
  return observability::counter(registry, "agentline_router_progress_records_total",
                                "Job progress records, by outcome (produced; replaced: a later record of the same "
                                "key was produced instead)");
}

}  // namespace

CoalescingPublisher::CoalescingPublisher(const kafka::KafkaSettings& settings, std::chrono::milliseconds interval,
                                         prometheus::Registry& registry)
    : producer_(settings, "router-progress"),
      produced_(&records(registry).Add({{"outcome", "produced"}})),
      replaced_(&records(registry).Add({{"outcome", "replaced"}})),
      // PeriodicTask ticks once at start: records wait a whole interval from the first on.
      task_("progress-publisher", interval, [this, started = false]() mutable {
        if (std::exchange(started, true)) flush();
        return false;
      }) {}

CoalescingPublisher::~CoalescingPublisher() {
  task_.stop();
  flush();
  if (!producer_.flush(std::chrono::seconds(30))) spdlog::warn("job progress records still unacknowledged at exit");
}

void CoalescingPublisher::publish(kafka::OutgoingRecord record, std::shared_ptr<kafka::Emitter::Hold> hold,
                                  Render render) {
  std::string id = record.topic + '\n' + record.key;
  std::lock_guard lock(mu_);
  auto [it, fresh] = index_.try_emplace(std::move(id), waiting_.size());
  if (fresh) waiting_.emplace_back();
  if (!fresh) replaced_->Increment();
  Waiting& waiting = waiting_[it->second];
  waiting.record = std::move(record);
  waiting.render = std::move(render);
  if (hold) waiting.holds.push_back(std::move(hold));
}

std::size_t CoalescingPublisher::flush() {
  std::vector<Waiting> due;
  {
    std::lock_guard lock(mu_);
    due.swap(waiting_);
    index_.clear();
  }
  std::size_t produced = 0;
  for (auto& waiting : due) {
    if (waiting.render) {
      auto value = waiting.render();
      if (!value) continue;  // its state is gone: the holds drop here, the tombstone follows
      waiting.record.value = std::move(*value);
    }
    ++produced;
    auto holds = std::make_shared<std::vector<std::shared_ptr<kafka::Emitter::Hold>>>(std::move(waiting.holds));
    producer_.send(waiting.record, [holds](const kafka::DeliveryReport& report) {
      if (!report.ok) {
        spdlog::error("could not deliver a job progress record: {}", report.error);
        for (const auto& hold : *holds) hold->fail();
      }
      holds->clear();  // the inputs' offsets may be committed now (unless failed)
    });
  }
  produced_->Increment(static_cast<double>(produced));
  return produced;
}

}  // namespace agentline::router
