#pragma once
// Shares a ResultCache between replicas through a compacted Kafka topic (cache.results).
//
// Each local put is published (key: the cache key; value: namespace, value, expiry), each
// invalidation as a tombstone, and a namespace invalidation as a marker record plus tombstones
// for the keys this replica held. Compaction keeps the newest record per key, so the topic is
// the cache's current content. A replica warms from the topic at start (every partition, from
// the beginning to the end seen at start, no consumer group) and then follows it, applying what
// other replicas publish. Expired entries are skipped; an entry older than its namespace's last
// invalidation marker is skipped too, whatever order the partitions arrive in.
//
// Publishing is asynchronous; a failed publish is counted and logged, never fatal (the cache
// only loses a chance to share). Thread-safe.
#include <cstdint>
#include <memory>
#include <string>

#include "agentline/cache/result_cache.h"
#include "agentline/kafka/client_config.h"

namespace agentline::cache {

struct CacheReplicatorConfig {
  kafka::KafkaSettings kafka;
  std::string topic;       // the physical topic name, e.g. "agentline.cache.results"
  std::string replica_id;  // unique per process; empty: hostname-pid
  Duration warm_timeout = std::chrono::seconds(30);
};

class CacheReplicator {
 public:
  struct Stats {
    std::int64_t published = 0;
    std::int64_t publish_failures = 0;
    std::int64_t warmed = 0;   // entries loaded by warm()
    std::int64_t applied = 0;  // entries and invalidations applied from other replicas since
    std::int64_t skipped = 0;  // expired, superseded, or unreadable records
  };

  CacheReplicator(ResultCache& cache, CacheReplicatorConfig config);
  ~CacheReplicator();  // stop()
  CacheReplicator(const CacheReplicator&) = delete;
  CacheReplicator& operator=(const CacheReplicator&) = delete;

  // Loads the topic up to its current end into the cache; returns how many entries it added
  // (net of the tombstones and namespace invalidations read after them). Throws
  // std::runtime_error if the topic cannot be read within warm_timeout.
  std::size_t warm();
  // Publishes the cache's local changes and follows the topic (from where warm() stopped, or
  // from the end if it did not run).
  void start();
  void stop();
  Stats stats() const;
  const std::string& replica_id() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::cache
