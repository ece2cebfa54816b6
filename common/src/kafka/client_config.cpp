#include "agentline/kafka/client_config.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "kafka/handles.h"

namespace agentline::kafka {

std::string KafkaSettings::resolved_bootstrap() const {
  if (!bootstrap_servers.empty()) return bootstrap_servers;
  std::string path = state_dir + "/bootstrap";
  std::ifstream in(path);
  std::string address;
  if (in && std::getline(in, address) && !address.empty()) return address;
  throw std::runtime_error(
      "no Kafka bootstrap servers: pass --bootstrap-servers (AGENTLINE_BOOTSTRAP_SERVERS) or start "
      "the embedded broker with `agentline broker`, which writes " +
      path);
}

std::string version_line() {
  return fmt::format("agentline {}, librdkafka {}", AGENTLINE_VERSION, rd_kafka_version_str());
}

namespace detail {

namespace {
void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw KafkaError("kafka property " + key + ": " + err);
  }
}

// Routes librdkafka's own log lines into the JSON log.
void log_cb(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 3) {
    spdlog::error("librdkafka {}: {}", fac, buf);
  } else if (level <= 4) {
    spdlog::warn("librdkafka {}: {}", fac, buf);
  } else {
    spdlog::debug("librdkafka {}: {}", fac, buf);
  }
}
}  // namespace

ConfPtr make_conf(const KafkaSettings& settings, const std::map<std::string, std::string>& defaults,
                  const std::map<std::string, std::string>& enforced) {
  ConfPtr conf(rd_kafka_conf_new());
  set(conf.get(), "bootstrap.servers", settings.resolved_bootstrap());
  for (const auto& [k, v] : defaults) set(conf.get(), k, v);
  for (const auto& [k, v] : settings.properties) {
    if (enforced.count(k) && enforced.at(k) != v) {
      spdlog::warn("kafka property {} is fixed by Agentline to {}; the configured value is ignored", k, enforced.at(k));
      continue;
    }
    set(conf.get(), k, v);
  }
  for (const auto& [k, v] : enforced) set(conf.get(), k, v);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  return conf;
}

KafkaPtr make_client(rd_kafka_type_t type, ConfPtr conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (rk == nullptr) throw KafkaError(std::string("cannot create Kafka client: ") + err);
  conf.release();  // owned by rk now
  return KafkaPtr(rk);
}

InboundRecord to_inbound_record(const rd_kafka_message_t* m) {
  InboundRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_timestamp_type_t ts_type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &ts_type);
  if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) {
    r.value.assign(static_cast<const char*>(m->payload), m->len);
  } else {
    r.tombstone = true;
  }
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers.push_back({name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
    }
  }
  return r;
}

}  // namespace detail
}  // namespace agentline::kafka
