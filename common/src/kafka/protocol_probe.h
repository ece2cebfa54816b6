#pragma once
// Whether the brokers offer the consumer group protocol (KIP-848): their ApiVersions answer
// lists ConsumerGroupHeartbeat. librdkafka has no public call for a broker's API versions, but
// logs them under debug=feature; a short-lived client with the service's own connection
// settings (TLS, SASL) connects once and reads them. (A consumer-protocol client on a broker
// without it does not fail: it re-queries the coordinator forever, at debug level only, so the
// question must be asked first.) The consumer runtime asks it under --group-protocol auto and
// consumer.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "agentline/kafka/client_config.h"

namespace agentline::kafka::detail {

// The brokers refused the client's credentials (SASL or TLS): retrying cannot fix that.
bool refused_credentials(int err);

// What librdkafka's APIVERSION log lines said.
struct ApiVersionsSeen {
  bool listed = false;   // "Broker API support:" seen: a broker answered
  bool offered = false;  // ConsumerGroupHeartbeat among its APIs

  void observe(std::string_view facility, std::string_view line);
};

struct ProtocolProbeAnswer {
  std::optional<bool> offered;  // nullopt: no broker answered in time
  std::string auth_error;       // the brokers refused the credentials: no answer will come
};

ProtocolProbeAnswer offers_consumer_protocol(const KafkaSettings& settings, std::chrono::milliseconds timeout);

}  // namespace agentline::kafka::detail
