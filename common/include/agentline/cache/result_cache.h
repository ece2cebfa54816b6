#pragma once
// The result cache: generated files keyed by the SHA-256 of what produced them (model,
// parameters, prompt), so a repeated task costs no LLM call.
//
// - Bounded in entries, with W-TinyLFU admission and eviction (a small LRU window in front of
//   a segmented LRU, admission decided by a 4-bit count-min frequency sketch with aging): on
//   skewed traffic it keeps what is asked for often, where plain LRU keeps what was asked for
//   last. Plain LRU is available for comparison (Policy::kLru).
// - A TTL per entry, checked against the injected clock.
// - Invalidation by key or by namespace (a namespace is, for example, a model or a prompt
//   version: everything generated under it can be dropped at once).
// - Single-flight: concurrent misses for one key run the computation once; the others wait for
//   its result (or its exception).
// - A listener sees local puts and invalidations (the CacheReplicator publishes them to the
//   compacted cache topic); entries applied from other replicas are not re-announced.
//
// Thread-safe. Values are immutable shared strings: a hit copies a pointer, not the value, and
// allocates nothing.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "agentline/resilience/clock.h"

namespace prometheus {
struct MetricFamily;
}

namespace agentline::cache {

using resilience::Clock;
using resilience::Duration;
using resilience::TimePoint;
using Value = std::shared_ptr<const std::string>;

// Lower-case hex SHA-256 of `data` (OpenSSL).
std::string sha256_hex(std::string_view data);
// The cache key of `content` under `ns`: SHA-256 of the namespace and the canonical JSON (keys
// sorted, no whitespace), so equal content gives equal keys whatever its field order.
std::string content_key(std::string_view ns, const nlohmann::json& content);

struct ResultCacheConfig {
  enum class Policy { kWTinyLfu, kLru };
  std::string name = "results";
  std::size_t max_entries = 10000;
  Duration ttl = std::chrono::hours(24);
  Policy policy = Policy::kWTinyLfu;
  // Independent segments, each with its own lock and policy; 0 picks 1 below 4096 entries and
  // 8 above (less lock contention between worker threads).
  int shards = 0;

  void validate() const;  // throws std::invalid_argument
};

class ResultCache {
 public:
  struct Listener {
    virtual ~Listener() = default;
    virtual void on_put(const std::string& key, const std::string& ns, const Value& value, Duration ttl) = 0;
    virtual void on_invalidate(const std::string& key) = 0;
    virtual void on_invalidate_namespace(const std::string& ns, const std::vector<std::string>& keys) = 0;
  };

  struct Stats {
    std::int64_t hits = 0;
    std::int64_t misses = 0;
    std::int64_t puts = 0;
    std::int64_t evictions = 0;    // dropped for size (or refused admission)
    std::int64_t expirations = 0;  // found past their TTL
    std::int64_t invalidations = 0;
    std::int64_t single_flight_shared = 0;  // misses served by another caller's computation
    std::int64_t remote_applied = 0;        // entries received from other replicas
    std::size_t entries = 0;
    double hit_rate() const {
      return hits + misses == 0 ? 0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
    }
  };

  struct Result {
    Value value;
    bool cached = false;  // served from the cache (or from another caller's computation)
  };

  explicit ResultCache(ResultCacheConfig config = {}, const Clock& clock = resilience::SystemClock::instance());
  ~ResultCache();
  ResultCache(const ResultCache&) = delete;
  ResultCache& operator=(const ResultCache&) = delete;

  Value get(const std::string& key);
  // Stores under `key`; `ttl` defaults to the config's.
  void put(const std::string& key, const std::string& ns, std::string value,
           std::optional<Duration> ttl = std::nullopt);
  // get(), else compute() once for all concurrent callers of this key, then put(). An exception
  // from compute() reaches every waiting caller and nothing is stored.
  Result get_or_compute(const std::string& key, const std::string& ns, const std::function<std::string()>& compute);
  bool invalidate(const std::string& key);
  std::size_t invalidate_namespace(const std::string& ns);

  // From a replica: stored (or removed) without telling the listener.
  void apply_remote_put(const std::string& key, const std::string& ns, std::string value, Duration ttl);
  void apply_remote_invalidate(const std::string& key);
  std::size_t apply_remote_invalidate_namespace(const std::string& ns);

  void set_listener(Listener* listener);  // nullptr to remove; must outlive its registration
  Stats stats() const;
  const ResultCacheConfig& config() const { return config_; }
  void append_metrics(std::vector<prometheus::MetricFamily>& families) const;

 private:
  class Shard;
  struct Flight;
  Shard& shard_for(std::size_t hash) const;
  void store(const std::string& key, const std::string& ns, Value value, Duration ttl, bool notify);
  std::size_t drop_namespace(const std::string& ns, bool notify);

  const ResultCacheConfig config_;
  const Clock& clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::atomic<Listener*> listener_{nullptr};
  std::atomic<std::int64_t> single_flight_shared_{0};
  std::atomic<std::int64_t> remote_applied_{0};
};

}  // namespace agentline::cache
