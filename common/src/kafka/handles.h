#pragma once
// RAII holders for librdkafka handles: one deleter pattern, used everywhere. Internal.
#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/record.h"

namespace agentline::kafka::detail {

template <auto DestroyFn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    if (p != nullptr) DestroyFn(p);
  }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, Deleter<rd_kafka_destroy>>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_destroy>>;
using PartitionListPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter<rd_kafka_topic_partition_list_destroy>>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_destroy>>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, Deleter<rd_kafka_queue_destroy>>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, Deleter<rd_kafka_event_destroy>>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, Deleter<rd_kafka_metadata_destroy>>;

class KafkaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A configuration from Agentline's defaults, then the user's properties, then `enforced`
// (the settings Agentline's guarantees rest on). Throws KafkaError naming a bad property;
// values are never included, since they may be secrets.
ConfPtr make_conf(const KafkaSettings& settings, const std::map<std::string, std::string>& defaults,
                  const std::map<std::string, std::string>& enforced);

KafkaPtr make_client(rd_kafka_type_t type, ConfPtr conf);

// Copies a consumed message (topic, partition, offset, timestamp, key, value, headers).
InboundRecord to_inbound_record(const rd_kafka_message_t* message);

}  // namespace agentline::kafka::detail
