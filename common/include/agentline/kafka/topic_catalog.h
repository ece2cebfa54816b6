#pragma once
// The topic catalog (topics/catalog.json): the one source of truth for topic names,
// partitions, configs, retry tiers and the DLQ. Read by the embedded broker, `agentline
// topics apply`, the services, Helm and the tests.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace agentline::kafka {

struct TopicSpec {
  std::string name;  // full name, prefix included
  std::int32_t partitions = 1;
  std::int32_t replication_factor = 1;
  std::map<std::string, std::string> configs;
};

struct RetryTier {
  std::string topic;  // full name
  int attempt = 1;    // the attempt number a record in this tier carries (1-based)
  std::chrono::milliseconds delay{0};
};

class TopicCatalog {
 public:
  // Parses catalog JSON; throws std::invalid_argument with the reason on a bad catalog.
  static TopicCatalog parse(const std::string& json_text);
  // `path` empty: the catalog compiled into the binary.
  static TopicCatalog load(const std::string& path);

  // Replaces the catalog's prefix (e.g. for tests or multi-tenant clusters).
  void set_prefix(const std::string& prefix);
  const std::string& prefix() const { return prefix_; }

  // The full name of a logical topic ("tasks.fix" -> "agentline.tasks.fix"). Throws
  // std::out_of_range for names the catalog does not hold.
  std::string topic(const std::string& logical_name) const;
  std::string dlq_topic() const { return topic(dlq_); }
  // The retry tiers of a consumer group, in order; empty for groups without tiers.
  std::vector<RetryTier> retry_tiers(const std::string& group) const;
  // Every topic, retry tiers included.
  std::vector<TopicSpec> all_topics() const;
  std::vector<std::string> retry_groups() const { return retry_groups_; }

 private:
  struct Logical {
    std::string name;
    std::int32_t partitions;
    std::map<std::string, std::string> configs;
  };
  std::string prefix_;
  std::int32_t replication_factor_ = 1;
  std::vector<Logical> topics_;
  std::string dlq_;
  std::vector<std::chrono::milliseconds> retry_delays_;
  std::int32_t retry_partitions_ = 1;
  std::vector<std::string> retry_groups_;
  std::map<std::string, std::string> retry_configs_;
};

}  // namespace agentline::kafka
