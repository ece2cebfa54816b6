#pragma once
// The embedded broker: librdkafka's mock cluster, speaking the Kafka protocol on loopback,
// with every catalog topic created at start (the mock has no CreateTopics API).
// Limits: memory only; each partition keeps about 5 MB / 100k messages and silently drops
// its oldest records past that. For development and tests, never production.
#include <memory>
#include <string>

#include "agentline/kafka/topic_catalog.h"

namespace agentline::kafka {

class EmbeddedBroker {
 public:
  EmbeddedBroker(const TopicCatalog& catalog, int broker_count = 1);
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
