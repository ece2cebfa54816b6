#pragma once
// Watches the volume that holds a service's SQLite file: every few seconds it reads the free
// and total bytes, exports agentline_storage_free_bytes / agentline_storage_capacity_bytes
// {store}, and turns readiness false (condition "<store>-disk") while less than `min_free`
// is left, so new work goes elsewhere before writes start failing. Stops on destruction.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace prometheus {
class Registry;
class Gauge;
}  // namespace prometheus

namespace agentline::observability {
class HealthState;
}

namespace agentline::storage {

class VolumeWatch {
 public:
  VolumeWatch(std::string store, std::string path, std::uint64_t min_free_bytes,
              std::shared_ptr<observability::HealthState> health, prometheus::Registry& registry);
  ~VolumeWatch();
  VolumeWatch(const VolumeWatch&) = delete;
  VolumeWatch& operator=(const VolumeWatch&) = delete;

  void check();  // one reading (also run by the thread)

 private:
  std::string store_;
  std::string path_;
  std::uint64_t min_free_;
  std::shared_ptr<observability::HealthState> health_;
  prometheus::Gauge* free_;
  prometheus::Gauge* capacity_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace agentline::storage
