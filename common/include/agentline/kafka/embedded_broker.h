#pragma once
// The embedded broker: librdkafka's mock cluster, speaking the Kafka protocol on loopback,
// with every catalog topic created at start (the mock has no CreateTopics API).
// Limits: memory only; each partition keeps about 5 MB / 100k messages and silently drops
// its oldest records past that. For development and tests, never production.
#include <chrono>
#include <memory>
#include <string>

#include "agentline/kafka/topic_catalog.h"

namespace agentline::kafka {

class EmbeddedBroker {
 public:
  struct Options {
    int brokers = 1;
    // How long a member of a consumer-protocol (KIP-848) group may stay silent before its
    // partitions move (a real broker's group.consumer.session.timeout.ms); its heartbeat
    // interval is a quarter of it. Classic-protocol members send their own.
    std::chrono::milliseconds group_session_timeout{10000};
    // false: the brokers do not offer the consumer group protocol, like Kafka before 4.0 or
    // one with group.coordinator.rebalance.protocols=classic (`agentline broker
    // --group-protocols classic`).
    bool consumer_group_protocol = true;
  };
  explicit EmbeddedBroker(const TopicCatalog& catalog, Options options);
  explicit EmbeddedBroker(const TopicCatalog& catalog) : EmbeddedBroker(catalog, Options{}) {}
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  const std::string& bootstrap_servers() const { return bootstrap_; }

  // Takes every broker of the cluster down (connections closed, new ones refused) or brings
  // them back, like a restart of a real broker: the log survives, clients reconnect and resume.
  void set_down(bool down);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
  int broker_count_ = 1;
};

}  // namespace agentline::kafka
