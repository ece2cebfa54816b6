#pragma once
// A concurrency limit with RAII leases: try_acquire() answers at once. Thread-safe.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace prometheus {
struct MetricFamily;
}

namespace agentline::resilience {

class Bulkhead {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept : bulkhead_(std::exchange(other.bulkhead_, nullptr)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        bulkhead_ = std::exchange(other.bulkhead_, nullptr);
      }
      return *this;
    }
    ~Lease() { release(); }
    explicit operator bool() const { return bulkhead_ != nullptr; }
    void release();

   private:
    friend class Bulkhead;
    explicit Lease(Bulkhead* b) : bulkhead_(b) {}
    Bulkhead* bulkhead_ = nullptr;
  };

  Bulkhead(std::string name, int max_concurrent);
  Lease try_acquire();
  int in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  void set_max(int max_concurrent);
  int max() const { return max_.load(std::memory_order_relaxed); }
  std::int64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  const std::string name_;
  std::atomic<int> max_;
  std::atomic<int> in_flight_{0};
  std::atomic<std::int64_t> rejected_{0};
};

}  // namespace agentline::resilience
