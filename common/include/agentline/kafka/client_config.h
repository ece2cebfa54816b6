#pragma once
// Connection settings shared by every Kafka client of a process.
#include <map>
#include <string>

namespace agentline::kafka {

struct KafkaSettings {
  std::string bootstrap_servers;
  // Passed to librdkafka as they are (security.protocol, sasl.*, ssl.*, ...). They override
  // the defaults Agentline sets, except the few its delivery guarantees rest on.
  std::map<std::string, std::string> properties;
  // Reads the bootstrap address written by `agentline broker` when bootstrap_servers is empty.
  std::string state_dir = ".agentline";

  // bootstrap_servers, or the embedded broker's address from state_dir; throws when neither.
  std::string resolved_bootstrap() const;
};

// "agentline 0.1.0, librdkafka 2.14.2": what --version and each service's first log line print.
// The librdkafka version is the linked library's own (rd_kafka_version_str()).
std::string version_line();

}  // namespace agentline::kafka
