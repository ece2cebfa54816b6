#pragma once
// Cluster administration through the Kafka Admin API and metadata requests.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/topic_catalog.h"

namespace agentline::kafka {

struct ApplyResult {
  std::vector<std::string> created;
  std::vector<std::string> existing;
  std::vector<std::string> warnings;  // e.g. partition count differs from the catalog
};

struct TopicOffsets {
  std::string topic;
  bool exists = false;
  std::int32_t partitions = 0;
  std::int64_t messages = 0;  // sum over partitions of (high watermark - log start)
  std::int64_t high_watermark_sum = 0;
};

class ClusterAdmin {
 public:
  explicit ClusterAdmin(const KafkaSettings& settings);
  ~ClusterAdmin();
  ClusterAdmin(const ClusterAdmin&) = delete;
  ClusterAdmin& operator=(const ClusterAdmin&) = delete;

  // Creates every catalog topic the cluster lacks. Existing topics are left as they are.
  // `replication_factor` overrides the catalog's; it is capped at the broker count.
  ApplyResult apply(const TopicCatalog& catalog, std::optional<int> replication_factor);
  std::vector<TopicOffsets> offsets(const std::vector<std::string>& topics);
  // Records of `topic` not yet committed by `group` (sum over partitions).
  std::int64_t group_lag(const std::string& group, const std::string& topic);
  int broker_count();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::kafka
