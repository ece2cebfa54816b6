#include "agentline/cache/cache_replicator.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <thread>

#include "agentline/kafka/producer.h"
#include "kafka/handles.h"

namespace agentline::cache {
namespace {

using namespace kafka::detail;
constexpr const char* kReplicaHeader = "agentline-cache-replica";
constexpr const char* kNamespacePrefix = "namespace:";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  }

  ResultCache& cache;
  CacheReplicatorConfig config;
  std::unique_ptr<kafka::Producer> producer;
  KafkaPtr consumer;
  bool assigned = false;
  std::thread follower;
  std::atomic<bool> running{false};
  std::mutex markers_mu;
  std::map<std::string, std::int64_t> namespace_invalidated_at;  // ns -> wall ms
  std::atomic<std::int64_t> published{0}, publish_failures{0}, warmed{0}, applied{0}, skipped{0};

  void publish(kafka::OutgoingRecord record) {
    record.topic = config.topic;
    record.headers.push_back({kReplicaHeader, config.replica_id});
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
    const std::int64_t now = wall_ms();
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
    const std::int64_t now = wall_ms();
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
      auto origin = record.header(kReplicaHeader);
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
    const std::int64_t now = wall_ms();
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

  void make_consumer() {
    if (consumer) return;
    consumer = make_client(RD_KAFKA_CONSUMER,
                           make_conf(config.kafka, {{"client.id", "agentline-cache-" + config.replica_id}},
                                     {{"group.id", "agentline-cache-" + config.replica_id},
                                      {"enable.auto.commit", "false"},
                                      {"enable.partition.eof", "true"},
                                      {"enable.auto.offset.store", "false"}}));
  }

  // Assigns every partition of the topic at `offset`; returns (partition, high watermark).
  std::map<std::int32_t, std::int64_t> assign_all(std::int64_t offset, std::chrono::steady_clock::time_point deadline) {
    std::map<std::int32_t, std::int64_t> ends;
    for (;;) {
      const rd_kafka_metadata_t* md_raw = nullptr;
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(consumer.get(), config.topic.c_str(), nullptr);
      const rd_kafka_resp_err_t err = rd_kafka_metadata(consumer.get(), 0, rkt, &md_raw, 5000);
      rd_kafka_topic_destroy(rkt);
      MetadataPtr md(md_raw);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          md->topics[0].partition_cnt > 0) {
        PartitionListPtr parts(rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt));
        for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
          const std::int32_t p = md->topics[0].partitions[i].id;
          std::int64_t low = 0, high = 0;
          if (rd_kafka_query_watermark_offsets(consumer.get(), config.topic.c_str(), p, &low, &high, 5000) !=
              RD_KAFKA_RESP_ERR_NO_ERROR) {
            throw std::runtime_error("cache: cannot read the offsets of " + config.topic);
          }
          ends[p] = high;
          rd_kafka_topic_partition_list_add(parts.get(), config.topic.c_str(), p)->offset = offset;
        }
        if (rd_kafka_assign(consumer.get(), parts.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          throw std::runtime_error("cache: cannot assign " + config.topic);
        }
        assigned = true;
        return ends;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("cache: topic " + config.topic + " is not available");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
};

CacheReplicator::CacheReplicator(ResultCache& cache, CacheReplicatorConfig config)
    : impl_(std::make_unique<Impl>(cache, std::move(config))) {}

CacheReplicator::~CacheReplicator() { stop(); }

const std::string& CacheReplicator::replica_id() const { return impl_->config.replica_id; }

std::size_t CacheReplicator::warm() {
  auto& i = *impl_;
  i.make_consumer();
  const auto deadline = std::chrono::steady_clock::now() + i.config.warm_timeout;
  auto ends = i.assign_all(RD_KAFKA_OFFSET_BEGINNING, deadline);
  std::map<std::int32_t, std::int64_t> next;  // next offset to read per partition
  auto done = [&] {
    for (const auto& [p, end] : ends) {
      if (end > 0 && next[p] < end) return false;
    }
    return true;
  };
  const std::size_t before = i.cache.stats().entries;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("cache: warming from " + i.config.topic + " timed out");
    }
    MessagePtr m(rd_kafka_consumer_poll(i.consumer.get(), 200));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next[m->partition] = std::max(next[m->partition], m->offset);
      continue;
    }
    if (m->err) {
      spdlog::warn("cache: while warming: {}", rd_kafka_message_errstr(m.get()));
      continue;
    }
    next[m->partition] = m->offset + 1;
    i.apply(to_inbound_record(m.get()), true);
  }
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
  i.make_consumer();
  if (!i.assigned) i.assign_all(RD_KAFKA_OFFSET_END, std::chrono::steady_clock::now() + i.config.warm_timeout);
  i.producer = std::make_unique<kafka::Producer>(i.config.kafka, "agentline-cache-" + i.config.replica_id);
  i.cache.set_listener(&i);
  i.follower = std::thread([&i] {
    while (i.running.load(std::memory_order_acquire)) {
      MessagePtr m(rd_kafka_consumer_poll(i.consumer.get(), 200));
      if (!m || m->err) continue;
      try {
        i.apply(to_inbound_record(m.get()), false);
      } catch (const std::exception& e) {
        i.skipped.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("cache: unreadable record at {}:{}: {}", m->partition, m->offset, e.what());
      }
    }
  });
}

void CacheReplicator::stop() {
  auto& i = *impl_;
  if (!i.running.exchange(false)) {
    if (i.consumer) {
      rd_kafka_consumer_close(i.consumer.get());
      i.consumer.reset();
    }
    return;
  }
  i.cache.set_listener(nullptr);
  if (i.follower.joinable()) i.follower.join();
  if (i.producer) i.producer->flush(std::chrono::seconds(10));
  i.producer.reset();
  rd_kafka_consumer_close(i.consumer.get());
  i.consumer.reset();
}

CacheReplicator::Stats CacheReplicator::stats() const {
  const auto& i = *impl_;
  return {i.published.load(), i.publish_failures.load(), i.warmed.load(), i.applied.load(), i.skipped.load()};
}

}  // namespace agentline::cache
