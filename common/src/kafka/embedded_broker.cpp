#include "agentline/kafka/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <future>
#include <vector>

#include "kafka/handles.h"

namespace agentline::kafka {

using namespace detail;

struct EmbeddedBroker::Impl {
  KafkaPtr owner;  // the mock cluster runs on this handle's background thread
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Impl() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
  }
};

EmbeddedBroker::EmbeddedBroker(const TopicCatalog& catalog, Options options) : impl_(std::make_unique<Impl>()) {
  const int broker_count = options.brokers;
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  // A producer handle that never connects anywhere; it only hosts the mock cluster.
  if (rd_kafka_conf_set(conf.get(), "bootstrap.servers", "", err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw KafkaError(err);
  }
  rd_kafka_conf_set(conf.get(), "log_level", "3", err, sizeof err);
  impl_->owner = make_client(RD_KAFKA_PRODUCER, std::move(conf));
  impl_->cluster = rd_kafka_mock_cluster_new(impl_->owner.get(), broker_count);
  if (impl_->cluster == nullptr) throw KafkaError("cannot start the embedded broker (mock cluster)");
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster);
  broker_count_ = broker_count;
  const auto session_ms = static_cast<int>(std::max<std::int64_t>(1000, options.group_session_timeout.count()));
  rd_kafka_mock_set_group_consumer_session_timeout_ms(impl_->cluster, session_ms);
  rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(impl_->cluster, std::max(100, session_ms / 4));
  if (!options.consumer_group_protocol) {
    constexpr std::int16_t kConsumerGroupHeartbeat = 68;  // the consumer protocol's one request
    rd_kafka_mock_set_apiversion(impl_->cluster, kConsumerGroupHeartbeat, -1, -1);
  }
  // Each mock operation is a request to the mock cluster's thread, which in librdkafka 2.0.2
  // sometimes misses its wake-up and answers only at its next 1 s poll. Issued one after the
  // other, 31 topics took ~9 s; issued concurrently, the waits overlap.
  std::vector<std::future<rd_kafka_resp_err_t>> pending;
  const auto topics = catalog.all_topics();
  for (const auto& topic : topics) {
    int rf = std::min(topic.replication_factor, broker_count);
    pending.push_back(std::async(std::launch::async, [cluster = impl_->cluster, &topic, rf] {
      return rd_kafka_mock_topic_create(cluster, topic.name.c_str(), topic.partitions, rf);
    }));
  }
  for (std::size_t i = 0; i < pending.size(); ++i) {
    rd_kafka_resp_err_t e = pending[i].get();
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError("embedded broker: cannot create " + topics[i].name + ": " + rd_kafka_err2str(e));
    }
  }
}

EmbeddedBroker::~EmbeddedBroker() = default;

void EmbeddedBroker::set_down(bool down) {
  for (int id = 1; id <= broker_count_; ++id) {
    rd_kafka_resp_err_t e =
        down ? rd_kafka_mock_broker_set_down(impl_->cluster, id) : rd_kafka_mock_broker_set_up(impl_->cluster, id);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError("embedded broker: cannot set broker " + std::to_string(id) + (down ? " down: " : " up: ") +
                       rd_kafka_err2str(e));
    }
  }
}

}  // namespace agentline::kafka
