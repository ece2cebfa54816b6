// Reading the brokers' API versions from librdkafka's log (common/src/kafka/protocol_probe.h).
#include "kafka/protocol_probe.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

namespace agentline::kafka::detail {
namespace {

TEST(ProtocolProbe, ABrokerListingConsumerGroupHeartbeatOffersTheConsumerProtocol) {
  ApiVersionsSeen seen;
  seen.observe("APIVERSION", "[thrd:127.0.0.1:9092/1]: 127.0.0.1:9092/1: Broker API support:");
  EXPECT_TRUE(seen.listed);
  EXPECT_FALSE(seen.offered);
  seen.observe("APIVERSION",
               "[thrd:127.0.0.1:9092/1]: 127.0.0.1:9092/1:   ApiKey ConsumerGroupHeartbeat (68) Versions 0..1");
  EXPECT_TRUE(seen.offered);
}

TEST(ProtocolProbe, OnlyApiVersionLinesCountAndAnAnswerWithoutTheApiIsNo) {
  ApiVersionsSeen seen;
  seen.observe("FEATURE", "ApiKey ConsumerGroupHeartbeat (68) Versions 0..1");
  EXPECT_FALSE(seen.listed);
  EXPECT_FALSE(seen.offered) << "another facility's line says nothing about the broker's APIs";
  seen.observe("APIVERSION", "Broker API support:");
  seen.observe("APIVERSION", "  ApiKey JoinGroup (11) Versions 0..9");
  EXPECT_TRUE(seen.listed);
  EXPECT_FALSE(seen.offered) << "a classic-only broker";
}

TEST(ProtocolProbe, RefusedCredentialsAreTheAuthenticationAndTlsErrors) {
  EXPECT_TRUE(refused_credentials(RD_KAFKA_RESP_ERR__AUTHENTICATION));
  EXPECT_TRUE(refused_credentials(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED));
  EXPECT_TRUE(refused_credentials(RD_KAFKA_RESP_ERR__SSL));
  EXPECT_FALSE(refused_credentials(RD_KAFKA_RESP_ERR__TRANSPORT)) << "a broker down may come back";
  EXPECT_FALSE(refused_credentials(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN));
}

}  // namespace
}  // namespace agentline::kafka::detail
