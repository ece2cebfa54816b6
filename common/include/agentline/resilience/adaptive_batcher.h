#pragma once
// Picks how many items to process together so that a batch takes about `target` time: it
// keeps a moving average of the time per item and moves the batch size halfway towards
// target / time-per-item after each batch, within [min_batch, max_batch]. Thread-safe.
#include <cstdint>
#include <mutex>

#include "agentline/config/container_resources.h"
#include "agentline/resilience/clock.h"

namespace agentline::resilience {

struct AdaptiveBatcherConfig {
  int min_batch = 1;
  int max_batch = 100;
  int initial_batch = 10;
  Duration target = std::chrono::seconds(1);
  double smoothing = 0.3;  // weight of the newest batch in the per-item average

  void validate() const;  // throws std::invalid_argument
  // max_batch bounded so that a batch of `bytes_per_item` items fits in 1/16 of the memory.
  static AdaptiveBatcherConfig sized_for(const config::ContainerResources& resources, std::int64_t bytes_per_item);
};

class AdaptiveBatcher {
 public:
  explicit AdaptiveBatcher(AdaptiveBatcherConfig config = {});
  int batch_size() const;
  // A batch of `items` took `elapsed`.
  void record(int items, Duration elapsed);
  void set_target(Duration target);
  void set_bounds(int min_batch, int max_batch);

  struct Stats {
    int batch_size = 0;
    std::int64_t batches = 0;
    std::int64_t items = 0;
    Duration per_item{0};  // moving average
    Duration last_duration{0};
    double average_batch = 0;
  };
  Stats stats() const;

 private:
  mutable std::mutex mu_;
  AdaptiveBatcherConfig config_;
  double size_;
  double per_item_ns_ = 0;
  Duration last_duration_{0};
  std::int64_t batches_ = 0;
  std::int64_t items_ = 0;
};

}  // namespace agentline::resilience
