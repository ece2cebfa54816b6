#include "agentline/kafka/topic_follower.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <thread>

#include "kafka/handles.h"

namespace agentline::kafka {

using namespace detail;

struct TopicFollower::Impl {
  KafkaSettings settings;
  std::string topic;
  std::string client_id;
  KafkaPtr consumer;
  bool assigned = false;
  std::thread thread;
  std::atomic<bool> running{false};

  void make_consumer() {
    if (consumer) return;
    // A group id is required by the client, never used: offsets are assigned, not committed.
    // A view is read by people waiting for it: a 100 ms long poll (librdkafka's default is
    // 500 ms) bounds how late a record on an idle partition is seen.
    consumer =
        make_client(RD_KAFKA_CONSUMER, make_conf(settings, {{"client.id", client_id}, {"fetch.wait.max.ms", "100"}},
                                                 {{"group.id", client_id + "-view"},
                                                  {"enable.auto.commit", "false"},
                                                  {"enable.auto.offset.store", "false"},
                                                  {"enable.partition.eof", "true"}}));
  }

  // Assigns every partition at `offset`; returns each partition's end offset now.
  std::map<std::int32_t, std::int64_t> assign_all(std::int64_t offset, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      const rd_kafka_metadata_t* md_raw = nullptr;
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(consumer.get(), topic.c_str(), nullptr);
      const rd_kafka_resp_err_t err = rd_kafka_metadata(consumer.get(), 0, rkt, &md_raw, 5000);
      rd_kafka_topic_destroy(rkt);
      MetadataPtr md(md_raw);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->topic_cnt == 1 &&
          md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
        std::map<std::int32_t, std::int64_t> ends;
        PartitionListPtr parts(rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt));
        rd_kafka_resp_err_t offsets_err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; i < md->topics[0].partition_cnt && offsets_err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
          const std::int32_t p = md->topics[0].partitions[i].id;
          std::int64_t low = 0, high = 0;
          // A topic just created may have no leader yet: retried below until the deadline.
          offsets_err = rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &low, &high, 5000);
          ends[p] = high;
          rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p)->offset = offset;
        }
        if (offsets_err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (rd_kafka_assign(consumer.get(), parts.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            throw std::runtime_error("cannot assign the partitions of " + topic);
          }
          assigned = true;
          return ends;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("cannot read the offsets of " + topic + ": " + rd_kafka_err2str(offsets_err));
        }
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("topic " + topic + " is not available");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
};

TopicFollower::TopicFollower(KafkaSettings settings, std::string topic, std::string client_id)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  impl_->topic = std::move(topic);
  impl_->client_id = std::move(client_id);
}

TopicFollower::~TopicFollower() { stop(); }

const std::string& TopicFollower::topic() const { return impl_->topic; }

std::size_t TopicFollower::catch_up(const Callback& on_record, std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  i.make_consumer();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto ends = i.assign_all(RD_KAFKA_OFFSET_BEGINNING, deadline);
  std::map<std::int32_t, std::int64_t> next;
  auto done = [&] {
    for (const auto& [p, end] : ends) {
      if (end > 0 && next[p] < end) return false;
    }
    return true;
  };
  std::size_t count = 0;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("reading " + i.topic + " timed out");
    MessagePtr m(rd_kafka_consumer_poll(i.consumer.get(), 200));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next[m->partition] = std::max(next[m->partition], m->offset);
      continue;
    }
    if (m->err) {
      spdlog::warn("{}: {}", i.topic, rd_kafka_message_errstr(m.get()));
      continue;
    }
    next[m->partition] = m->offset + 1;
    on_record(to_inbound_record(m.get()));
    ++count;
  }
  return count;
}

void TopicFollower::follow(Callback on_record) {
  auto& i = *impl_;
  if (i.running.exchange(true)) return;
  i.make_consumer();
  if (!i.assigned) i.assign_all(RD_KAFKA_OFFSET_END, std::chrono::steady_clock::now() + std::chrono::seconds(30));
  i.thread = std::thread([&i, cb = std::move(on_record)] {
    while (i.running.load(std::memory_order_acquire)) {
      MessagePtr m(rd_kafka_consumer_poll(i.consumer.get(), 200));
      if (!m || m->err) continue;
      try {
        cb(to_inbound_record(m.get()));
      } catch (const std::exception& e) {
        spdlog::warn("{}: record at {}:{} not applied: {}", i.topic, m->partition, m->offset, e.what());
      }
    }
  });
}

void TopicFollower::stop() {
  auto& i = *impl_;
  i.running.store(false);
  if (i.thread.joinable()) i.thread.join();
  if (i.consumer) {
    rd_kafka_consumer_close(i.consumer.get());
    i.consumer.reset();
    i.assigned = false;
  }
}

}  // namespace agentline::kafka
