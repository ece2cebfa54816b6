#include "protocol_probe.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <mutex>

#include "kafka/handles.h"

namespace agentline::kafka::detail {

bool refused_credentials(int err) {
  return err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
         err == RD_KAFKA_RESP_ERR__SSL;
}

void ApiVersionsSeen::observe(std::string_view facility, std::string_view line) {
  if (facility != "APIVERSION") return;
  if (line.find("Broker API support:") != std::string_view::npos) listed = true;
  if (line.find("ApiKey ConsumerGroupHeartbeat (68)") != std::string_view::npos) offered = true;
}

namespace {

struct Probe {
  std::mutex mutex;  // librdkafka's threads log; the caller reads
  ApiVersionsSeen seen;
  std::string auth_error;
};

void probe_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  if (!refused_credentials(err)) return;
  auto* probe = static_cast<Probe*>(opaque);
  std::lock_guard lock(probe->mutex);
  probe->auth_error = reason;
}

void probe_log(const rd_kafka_t* rk, int, const char* fac, const char* line) {
  auto* probe = static_cast<Probe*>(rd_kafka_opaque(rk));
  std::lock_guard lock(probe->mutex);
  probe->seen.observe(fac, line);
}

}  // namespace

ProtocolProbeAnswer offers_consumer_protocol(const KafkaSettings& settings, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  Probe probe;
  {
    auto conf = make_conf(settings, {{"client.id", "agentline-protocol-probe"}}, {});
    char err[256];
    if (rd_kafka_conf_set(conf.get(), "debug", "feature", err, sizeof err) != RD_KAFKA_CONF_OK) return {};
    rd_kafka_conf_set_opaque(conf.get(), &probe);
    rd_kafka_conf_set_log_cb(conf.get(), probe_log);
    rd_kafka_conf_set_error_cb(conf.get(), probe_error);
    KafkaPtr rk = make_client(RD_KAFKA_PRODUCER, std::move(conf));
    const rd_kafka_metadata_t* metadata = nullptr;
    const auto deadline = Clock::now() + timeout;
    auto refused = [&] {
      rd_kafka_poll(rk.get(), 0);  // serves the error callback
      std::lock_guard lock(probe.mutex);
      return !probe.auth_error.empty();
    };
    while (Clock::now() < deadline && !refused()) {
      const auto left = std::min(std::chrono::milliseconds(500),
                                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      // A metadata request makes the client connect; the API versions are exchanged first.
      if (rd_kafka_metadata(rk.get(), 0, nullptr, &metadata, static_cast<int>(std::max<long>(1, left.count()))) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(metadata);
        break;
      }
    }
  }  // destroyed: every log line has been delivered
  std::lock_guard lock(probe.mutex);
  if (!probe.seen.listed) return {std::nullopt, probe.auth_error};
  return {probe.seen.offered, {}};
}

}  // namespace agentline::kafka::detail
