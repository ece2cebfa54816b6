#include "agentline/kafka/admin.h"

#include <spdlog/spdlog.h>

#include <set>

#include "kafka/handles.h"

namespace agentline::kafka {

using namespace detail;

namespace {
constexpr int kTimeoutMs = 10000;
}

struct ClusterAdmin::Impl {
  KafkaSettings settings;
  KafkaPtr rk;

  MetadataPtr metadata() {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 1, nullptr, &md, kTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError(std::string("cannot read cluster metadata: ") + rd_kafka_err2str(err));
    }
    return MetadataPtr(md);
  }
};

ClusterAdmin::ClusterAdmin(const KafkaSettings& settings) : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  impl_->rk = make_client(RD_KAFKA_PRODUCER, make_conf(settings, {{"client.id", "agentline-admin"}}, {}));
}

ClusterAdmin::~ClusterAdmin() = default;

int ClusterAdmin::broker_count() { return impl_->metadata()->broker_cnt; }

ApplyResult ClusterAdmin::apply(const TopicCatalog& catalog, std::optional<int> replication_factor) {
  ApplyResult result;
  auto md = impl_->metadata();
  std::map<std::string, int> existing;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) existing[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  const int brokers = md->broker_cnt;

  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const auto& spec : catalog.all_topics()) {
    if (auto it = existing.find(spec.name); it != existing.end()) {
      result.existing.push_back(spec.name);
      if (it->second != spec.partitions) {
        result.warnings.push_back(spec.name + " has " + std::to_string(it->second) + " partitions, the catalog says " +
                                  std::to_string(spec.partitions));
      }
      continue;
    }
    int rf = replication_factor.value_or(spec.replication_factor);
    if (rf > brokers) {
      result.warnings.push_back(spec.name + ": replication factor " + std::to_string(rf) + " capped at the " +
                                std::to_string(brokers) + " broker(s) of this cluster");
      rf = brokers;
    }
    char err[512];
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions, rf, err, sizeof err);
    if (nt == nullptr) throw KafkaError("topic " + spec.name + ": " + err);
    for (const auto& [k, v] : spec.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    new_topics.push_back(nt);
  }
  if (new_topics.empty()) return result;

  QueuePtr queue(rd_kafka_queue_new(impl_->rk.get()));
  rd_kafka_CreateTopics(impl_->rk.get(), new_topics.data(), new_topics.size(), nullptr, queue.get());
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  EventPtr event(rd_kafka_queue_poll(queue.get(), kTimeoutMs * 3));
  if (!event) throw KafkaError("CreateTopics timed out");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("CreateTopics failed: ") + rd_kafka_event_error_string(event.get()));
  }
  const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(res, &count);
  std::string failures;
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(topics[i]);
    std::string name = rd_kafka_topic_result_name(topics[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.created.push_back(name);
    } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      result.existing.push_back(name);  // created concurrently by someone else
    } else {
      const char* msg = rd_kafka_topic_result_error_string(topics[i]);
      failures += "\n  " + name + ": " + (msg ? msg : rd_kafka_err2str(e));
    }
  }
  if (!failures.empty()) throw KafkaError("could not create topics:" + failures);
  return result;
}

std::vector<TopicOffsets> ClusterAdmin::offsets(const std::vector<std::string>& topics) {
  auto md = impl_->metadata();
  std::vector<TopicOffsets> out;
  for (const auto& name : topics) {
    TopicOffsets t{name};
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& mt = md->topics[i];
      if (name != mt.topic || mt.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      t.exists = true;
      t.partitions = mt.partition_cnt;
      for (int p = 0; p < mt.partition_cnt; ++p) {
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(impl_->rk.get(), name.c_str(), mt.partitions[p].id,
                                                                 &low, &high, kTimeoutMs);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
          throw KafkaError("watermarks of " + name + ": " + rd_kafka_err2str(e));
        }
        t.messages += high - low;
        t.high_watermark_sum += high;
      }
    }
    out.push_back(t);
  }
  return out;
}

std::int64_t ClusterAdmin::group_lag(const std::string& group, const std::string& topic) {
  auto md = impl_->metadata();
  int partitions = 0;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) partitions = md->topics[i].partition_cnt;
  }
  if (partitions == 0) return 0;
  // A consumer handle of the group reads the committed offsets without joining the group.
  KafkaPtr consumer = make_client(
      RD_KAFKA_CONSUMER, make_conf(impl_->settings, {{"client.id", "agentline-admin"}}, {{"group.id", group}}));
  PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  rd_kafka_resp_err_t err = rd_kafka_committed(consumer.get(), list.get(), kTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) throw KafkaError(std::string("committed offsets: ") + rd_kafka_err2str(err));
  std::int64_t lag = 0;
  for (int i = 0; i < list->cnt; ++i) {
    int64_t low = 0, high = 0;
    rd_kafka_query_watermark_offsets(impl_->rk.get(), topic.c_str(), list->elems[i].partition, &low, &high, kTimeoutMs);
    int64_t committed = list->elems[i].offset >= 0 ? list->elems[i].offset : low;
    lag += std::max<int64_t>(0, high - committed);
  }
  rd_kafka_consumer_close(consumer.get());
  return lag;
}

}  // namespace agentline::kafka
