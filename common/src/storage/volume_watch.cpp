#include "agentline/storage/volume_watch.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>

#include "agentline/observability/health.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::storage {

VolumeWatch::VolumeWatch(std::string store, std::string path, std::uint64_t min_free_bytes,
                         std::shared_ptr<observability::HealthState> health, prometheus::Registry& registry)
    : store_(std::move(store)), path_(std::move(path)), min_free_(min_free_bytes), health_(std::move(health)) {
  free_ = &observability::gauge(registry, "agentline_storage_free_bytes",
                                "Free bytes on the volume of a service's SQLite store (for the disk alert)")
               .Add({{"store", store_}});
  capacity_ = &observability::gauge(registry, "agentline_storage_capacity_bytes",
                                    "Size of the volume of a service's SQLite store")
                   .Add({{"store", store_}});
  check();
  thread_ = std::thread([this] {
    while (!stop_) {
      for (int i = 0; i < 50 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!stop_) check();
    }
  });
}

VolumeWatch::~VolumeWatch() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void VolumeWatch::check() {
  std::filesystem::path p(path_);
  if (!std::filesystem::exists(p)) p = p.parent_path();
  if (p.empty()) p = ".";
  struct statvfs s {};
  if (statvfs(p.c_str(), &s) != 0) return;
  const std::uint64_t free = static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
  free_->Set(static_cast<double>(free));
  capacity_->Set(static_cast<double>(static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize));
  const bool ok = free >= min_free_;
  health_->set_condition(
      store_ + "-disk", ok,
      ok ? "" : "the volume of " + path_ + " has " + std::to_string(free / (1024 * 1024)) + " MiB free");
}

}  // namespace agentline::storage
