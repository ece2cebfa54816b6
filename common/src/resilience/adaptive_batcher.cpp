#include "agentline/resilience/adaptive_batcher.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace agentline::resilience {

void AdaptiveBatcherConfig::validate() const {
  if (min_batch < 1 || max_batch < min_batch)
    throw std::invalid_argument("adaptive batcher: need 1 <= min_batch <= max_batch");
  if (target.count() <= 0) throw std::invalid_argument("adaptive batcher: target must be positive");
  if (!(smoothing > 0 && smoothing <= 1)) throw std::invalid_argument("adaptive batcher: smoothing in (0, 1]");
}

AdaptiveBatcherConfig AdaptiveBatcherConfig::sized_for(const config::ContainerResources& resources,
                                                       std::int64_t bytes_per_item) {
  AdaptiveBatcherConfig c;
  if (bytes_per_item > 0 && resources.memory_bytes > 0) {
    const std::int64_t fits = resources.memory_bytes / 16 / bytes_per_item;
    c.max_batch = static_cast<int>(std::clamp<std::int64_t>(fits, 1, 10000));
  }
  c.min_batch = std::min(c.min_batch, c.max_batch);
  c.initial_batch = std::clamp(c.initial_batch, c.min_batch, c.max_batch);
  return c;
}

AdaptiveBatcher::AdaptiveBatcher(AdaptiveBatcherConfig config)
    : config_((config.validate(), config)),
      size_(std::clamp(config.initial_batch, config.min_batch, config.max_batch)) {}

int AdaptiveBatcher::batch_size() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(std::lround(size_));
}

void AdaptiveBatcher::record(int items, Duration elapsed) {
  if (items <= 0) return;
  std::lock_guard lock(mu_);
  const double per_item = static_cast<double>(elapsed.count()) / items;
  per_item_ns_ = batches_ == 0 ? per_item : (1 - config_.smoothing) * per_item_ns_ + config_.smoothing * per_item;
  ++batches_;
  items_ += items;
  last_duration_ = elapsed;
  const double ideal =
      per_item_ns_ > 0 ? static_cast<double>(config_.target.count()) / per_item_ns_ : config_.max_batch;
  size_ = std::clamp(size_ + (ideal - size_) / 2, static_cast<double>(config_.min_batch),
                     static_cast<double>(config_.max_batch));
}

void AdaptiveBatcher::set_target(Duration target) {
  if (target.count() <= 0) throw std::invalid_argument("adaptive batcher: target must be positive");
  std::lock_guard lock(mu_);
  config_.target = target;
}

void AdaptiveBatcher::set_bounds(int min_batch, int max_batch) {
  if (min_batch < 1 || max_batch < min_batch)
    throw std::invalid_argument("adaptive batcher: need 1 <= min_batch <= max_batch");
  std::lock_guard lock(mu_);
  config_.min_batch = min_batch;
  config_.max_batch = max_batch;
  size_ = std::clamp(size_, static_cast<double>(min_batch), static_cast<double>(max_batch));
}

AdaptiveBatcher::Stats AdaptiveBatcher::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.batch_size = static_cast<int>(std::lround(size_));
  s.batches = batches_;
  s.items = items_;
  s.per_item = Duration{static_cast<std::int64_t>(per_item_ns_)};
  s.last_duration = last_duration_;
  s.average_batch = batches_ > 0 ? static_cast<double>(items_) / static_cast<double>(batches_) : 0;
  return s;
}

}  // namespace agentline::resilience
