#pragma once
// Where Kafka is and how its topics are named: --bootstrap-servers, --state-dir, --catalog,
// --topic-prefix and the librdkafka properties (-X, AGENTLINE_KAFKA_*). Every service binds
// them through ServiceHost; a command that talks to Kafka outside a service (dlq-escalator
// replay) binds the same ones, so it reads the same flags, variables and config file.
#include <map>
#include <string>

#include "agentline/config/options.h"
#include "agentline/kafka/client_config.h"

namespace agentline::service {

struct ConnectionOptions {
  std::string bootstrap_servers;  // empty: the embedded broker's address from state-dir
  std::string state_dir = ".agentline";
  std::string catalog;       // empty: the catalog compiled into the binary
  std::string topic_prefix;  // empty: the catalog's
  std::map<std::string, std::string> kafka;

  kafka::KafkaSettings kafka_settings() const { return {bootstrap_servers, kafka, state_dir}; }
};

void bind_connection_options(config::OptionSet& options, ConnectionOptions& connection);

}  // namespace agentline::service
