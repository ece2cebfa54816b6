#include "agentline/cache/cache_replicator.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/headers.h"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_follower.h"

namespace agentline::cache {
namespace {

constexpr const char* kNamespacePrefix = "namespace:";

std::string default_replica_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

}  // namespace

struct CacheReplicator::Impl final : ResultCache::Listener {
  Impl(ResultCache& c, CacheReplicatorConfig cfg) : cache(c), config(std::move(cfg)) {
    if (config.replica_id.empty()) config.replica_id = default_replica_id();
    if (config.topic.empty()) throw std::invalid_argument("cache replicator: the topic is empty");
    follower =
        std::make_unique<kafka::TopicFollower>(config.kafka, config.topic, "agentline-cache-" + config.replica_id);
  }

  ResultCache& cache;
  CacheReplicatorConfig config;
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<kafka::TopicFollower> follower;
  std::atomic<bool> running{false};
  std::mutex markers_mu;
  std::map<std::string, std::int64_t> namespace_invalidated_at;  // ns -> wall ms
  std::atomic<std::int64_t> published{0}, publish_failures{0}, warmed{0}, applied{0}, skipped{0};

  void publish(kafka::OutgoingRecord record) {
    record.topic = config.topic;
    record.headers.push_back({std::string(kafka::headers::kCacheReplica), config.replica_id});
    producer->send(record, [this, key = record.key](const kafka::DeliveryReport& report) {
      if (report.ok) {
        published.fetch_add(1, std::memory_order_relaxed);
      } else {
        publish_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("cache: could not share entry {}: {}", key, report.error);
      }
    });
  }

  void on_put(const std::string& key, const std::string& ns, const Value& value, Duration ttl) override {
    const std::int64_t now = events::now_ms();
    nlohmann::json v = {{"ns", ns},
                        {"value", *value},
                        {"created_at_ms", now},
                        {"expires_at_ms", now + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count()}};
    kafka::OutgoingRecord r;
    r.key = key;
    r.value = v.dump();
    publish(std::move(r));
  }

  void on_invalidate(const std::string& key) override {
    kafka::OutgoingRecord r;
    r.key = key;
    r.tombstone = true;
    publish(std::move(r));
  }

  void on_invalidate_namespace(const std::string& ns, const std::vector<std::string>& keys) override {
    const std::int64_t now = events::now_ms();
    {
      std::lock_guard lock(markers_mu);
      auto& at = namespace_invalidated_at[ns];
      at = std::max(at, now);
    }
    kafka::OutgoingRecord marker;
    marker.key = kNamespacePrefix + ns;
    marker.value = nlohmann::json{{"invalidate_namespace", ns}, {"at_ms", now}}.dump();
    publish(std::move(marker));
    for (const auto& key : keys) on_invalidate(key);
  }

  // Applies one record of the topic; true if it stored an entry.
  bool apply(const kafka::InboundRecord& record, bool from_warm) {
    if (!record.key) {
      skipped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (!from_warm) {
      auto origin = record.header(kafka::headers::kCacheReplica);
      if (origin && *origin == config.replica_id) return false;  // our own, already applied
    }
    const std::string& key = *record.key;
    if (record.tombstone) {
      if (key.rfind(kNamespacePrefix, 0) != 0) cache.apply_remote_invalidate(key);
      applied.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    nlohmann::json v = nlohmann::json::parse(record.value, nullptr, false);
    if (v.is_discarded() || !v.is_object()) {
      skipped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (key.rfind(kNamespacePrefix, 0) == 0) {
      const std::string ns = v.value("invalidate_namespace", std::string());
      const std::int64_t at = v.value("at_ms", std::int64_t{0});
      {
        std::lock_guard lock(markers_mu);
        auto& known = namespace_invalidated_at[ns];
        known = std::max(known, at);
      }
      cache.apply_remote_invalidate_namespace(ns);
      applied.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const std::string ns = v.value("ns", std::string());
    const std::int64_t created = v.value("created_at_ms", std::int64_t{0});
    const std::int64_t expires = v.value("expires_at_ms", std::int64_t{0});
    const auto value = v.find("value");
    const std::int64_t now = events::now_ms();
    bool superseded = false;
    {
      std::lock_guard lock(markers_mu);
      auto it = namespace_invalidated_at.find(ns);
      superseded = it != namespace_invalidated_at.end() && created <= it->second;
    }
    if (value == v.end() || !value->is_string() || expires <= now || superseded) {
      skipped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    cache.apply_remote_put(key, ns, value->get<std::string>(), std::chrono::milliseconds(expires - now));
    applied.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};

CacheReplicator::CacheReplicator(ResultCache& cache, CacheReplicatorConfig config)
    : impl_(std::make_unique<Impl>(cache, std::move(config))) {}

CacheReplicator::~CacheReplicator() { stop(); }

const std::string& CacheReplicator::replica_id() const { return impl_->config.replica_id; }

std::size_t CacheReplicator::warm() {
  auto& i = *impl_;
  const std::size_t before = i.cache.stats().entries;
  i.follower->catch_up([&i](const kafka::InboundRecord& r) { i.apply(r, true); },
                       std::chrono::duration_cast<std::chrono::milliseconds>(i.config.warm_timeout));
  // Entries added, net of the tombstones and namespace markers that followed them.
  const std::size_t after = i.cache.stats().entries;
  const std::size_t stored = after > before ? after - before : 0;
  i.warmed.fetch_add(static_cast<std::int64_t>(stored), std::memory_order_relaxed);
  spdlog::info("cache: warmed {} entries from {}", stored, i.config.topic);
  return stored;
}

void CacheReplicator::start() {
  auto& i = *impl_;
  if (i.running.exchange(true)) return;
  i.producer = std::make_unique<kafka::Producer>(i.config.kafka, "agentline-cache-" + i.config.replica_id);
  i.cache.set_listener(&i);
  i.follower->follow([&i](const kafka::InboundRecord& r) { i.apply(r, false); });
}

void CacheReplicator::stop() {
  auto& i = *impl_;
  const bool was_running = i.running.exchange(false);
  if (was_running) i.cache.set_listener(nullptr);
  i.follower->stop();
  if (i.producer) i.producer->flush(std::chrono::seconds(10));
  i.producer.reset();
}

CacheReplicator::Stats CacheReplicator::stats() const {
  const auto& i = *impl_;
  return {i.published.load(), i.publish_failures.load(), i.warmed.load(), i.applied.load(), i.skipped.load()};
}

}  // namespace agentline::cache
