#include "agentline/kafka/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

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

EmbeddedBroker::EmbeddedBroker(const TopicCatalog& catalog, int broker_count) : impl_(std::make_unique<Impl>()) {
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
  for (const auto& topic : catalog.all_topics()) {
    int rf = std::min(topic.replication_factor, broker_count);
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(impl_->cluster, topic.name.c_str(), topic.partitions, rf);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError("embedded broker: cannot create " + topic.name + ": " + rd_kafka_err2str(e));
    }
  }
}

EmbeddedBroker::~EmbeddedBroker() = default;

}  // namespace agentline::kafka
