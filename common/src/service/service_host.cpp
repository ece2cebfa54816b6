#include "agentline/service/service_host.h"

#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "agentline/observability/logging.h"
#include "agentline/observability/metric_registration.h"
#include "agentline/service/stop_signal.h"

namespace agentline::service {

namespace {

std::atomic<kafka::ConsumerRuntime*> g_running{nullptr};

void stop_running_runtime() {
  if (auto* runtime = g_running.load()) runtime->request_stop();
}

}  // namespace

ServiceHost::ServiceHost(std::string service, std::string description, std::vector<std::string> topics)
    : service_(std::move(service)),
      logical_topics_(std::move(topics)),
      options_(service_, std::move(description)),
      registry_(std::make_shared<prometheus::Registry>()),
      health_(std::make_shared<observability::HealthState>()) {
  options_.set_version(kafka::version_line());
  auto& c = common_;
  bind_connection_options(options_, c);
  options_.add("group-id", &c.group_id, "Consumer group; empty: the service name");
  options_.add("http-host", &c.http_host,
               "Address of /metrics, /healthz, /readyz and the admin routes (0.0.0.0: every interface)");
  options_.add("api-token-file", &c.api_token_file,
               "File holding the bearer token admin routes (and the gateway's API) require (or env "
               "AGENTLINE_API_TOKEN; empty: none, and then they answer on a loopback address only)");
  options_.add_flag("insecure-no-auth", &c.insecure_no_auth,
                    "Answer admin routes (the gateway's API) without a token on an address that is not loopback");
  options_.add("http-port", &c.http_port, "Port of /metrics, /healthz and /readyz (0 picks a free port)");
  options_.add("log-level", &c.log_level, "trace, debug, info, warn or error");
  options_.add("max-in-flight", &c.max_in_flight,
               "Records processed in parallel, across all partitions (0: sized for the container where the "
               "service is bound by the machine, else 16)");
  options_.add("shutdown-grace-ms", &c.shutdown_grace_ms, "On SIGTERM, time in-flight work gets to finish");
  options_.add("session-timeout-ms", &c.session_timeout_ms,
               "Consumer group session timeout under the classic group protocol (under the consumer protocol "
               "the broker's group.consumer.session.timeout.ms applies)");
  options_.add("group-protocol", &c.group_protocol,
               "Consumer group protocol: consumer (KIP-848), classic, or auto (consumer, classic where the "
               "brokers lack it)");
  options_.add("commit-interval-ms", &c.commit_interval_ms, "How often finished offsets are committed (and lag moves)");
  options_.add("statistics-interval-ms", &c.statistics_interval_ms, "librdkafka statistics (consumer lag) interval");
}

void bind_connection_options(config::OptionSet& options, ConnectionOptions& c) {
  options.add("bootstrap-servers", &c.bootstrap_servers,
              "Kafka bootstrap servers; empty: the embedded broker's address from <state-dir>/bootstrap");
  options.add("state-dir", &c.state_dir, "Directory where `agentline broker` writes its bootstrap address");
  options.add("catalog", &c.catalog, "Topic catalog file; empty: the catalog built into the binary");
  options.add("topic-prefix", &c.topic_prefix, "Prefix of every topic name; empty: the catalog's");
  options.add_kafka_properties(&c.kafka);
}

ServiceHost::~ServiceHost() = default;

std::optional<int> ServiceHost::configure(int argc, char** argv, const std::function<void()>& build) {
  try {
    if (options_.parse(argc, argv) == config::OptionSet::Outcome::kExit) return 0;
    observability::init_logging(service_, common_.log_level);
    spdlog::info("starting {} ({})", service_, kafka::version_line());
    group_protocol_ = kafka::parse_group_protocol(common_.group_protocol);
    if (common_.group_id.empty()) common_.group_id = service_;
    catalog_ = kafka::TopicCatalog::load(common_.catalog);
    if (!common_.topic_prefix.empty()) catalog_.set_prefix(common_.topic_prefix);
    for (const auto& t : logical_topics_) catalog_.topic(t);  // fail early on a catalog without them
    if (common_.max_in_flight < 0) throw config::ConfigError("--max-in-flight must be at least 1 (0: sized)");
    common_.max_in_flight = size_pool("handlers", common_.max_in_flight, in_flight_rule_);
    common_.api_token = config::read_secret(common_.api_token_file, "AGENTLINE_API_TOKEN");
    net::HttpServerOptions http;
    http.host = common_.http_host;
    http.port = common_.http_port;
    http.token = common_.api_token;
    http.open_without_token = config::is_loopback_host(common_.http_host) || common_.insecure_no_auth;
    http_ = std::make_unique<net::HttpServer>(std::move(http));
    if (build) build();
  } catch (const std::exception& e) {
    std::cerr << service_ << ": configuration error: " << e.what() << "\n";
    return 2;
  }
  return std::nullopt;
}

int ServiceHost::size_pool(const std::string& pool, int configured, const SizingRule& rule) {
  static const config::ContainerResources resources = config::ContainerResources::detect();
  constexpr int kDefault = 16;
  const char* source = configured > 0 ? "option" : rule ? "container" : "default";
  const int size = configured > 0 ? configured : rule ? std::max(1, rule(resources)) : kDefault;
  if (configured <= 0 && rule) {
    spdlog::info("{}: {} (sized for {:.2g} CPUs from {}, {} MiB from {})", pool, size, resources.cpus,
                 resources.cpu_source, resources.memory_bytes >> 20, resources.memory_source);
  } else {
    spdlog::info("{}: {} ({})", pool, size, source);
  }
  observability::gauge(*registry_, "agentline_pool_size",
                       "Threads or slots of a pool, as configured or sized for the container's CPU and memory limits")
      .Add({{"pool", pool}, {"source", source}})
      .Set(size);
  return size;
}

bool ServiceHost::opened(const std::string& what, const std::function<void()>& open) const {
  try {
    open();
    return true;
  } catch (const std::exception& e) {
    spdlog::error("cannot open {}: {}", what, e.what());
    return false;
  }
}

void ServiceHost::add_admin_route(const std::string& method, const std::string& path, AdminRoute route) {
  http_->add({method, path, path,
              [route = std::move(route)](net::HttpExchange& x) {
                auto body = x.read_body(64 << 10);
                if (!body) return x.respond_json(413, R"({"error":"the body is larger than 64 KiB"})");
                auto [status, json] = route(*body);
                x.respond_json(status, json);
              },
              net::HttpRoute::Access::kToken, net::HttpRoute::Runs::kAdmin});
}

void ServiceHost::start_http() {
  observability::add_operational_routes(*http_, registry_, health_, collectors_);
  http_->start();
  spdlog::info("serving /metrics, /healthz and /readyz on {}:{}", common_.http_host, http_->port());
  if (common_.api_token.empty() && !http_->options().open_without_token)
    spdlog::warn("token routes answer 401 on {}: no --api-token-file (or --insecure-no-auth)", common_.http_host);
}

int ServiceHost::serve(const std::function<int()>& body) {
  int rc = 1;
  try {
    install_stop_signals();
    start_http();
    rc = body();
  } catch (const std::exception& e) {
    spdlog::error("fatal: {}", e.what());
  }
  http_->stop();
  spdlog::info("exiting with {}", rc);
  return rc;
}

int ServiceHost::run(const kafka::Handler& handler) {
  try {
    const kafka::KafkaSettings settings = common_.kafka_settings();
    auto health = health_;
    start_http();
    auto producer = std::make_shared<kafka::Producer>(settings, service_);

    kafka::ConsumerOptions options;
    options.service = service_;
    options.group_id = common_.group_id;
    for (const auto& t : logical_topics_) options.topics.push_back(catalog_.topic(t));
    for (const auto& t : priority_order_) options.priority_order.push_back(catalog_.topic(t));
    for (const auto& t : observed_topics_) options.observed_topics.push_back(catalog_.topic(t));
    options.max_in_flight = common_.max_in_flight;
    options.shutdown_grace = std::chrono::milliseconds(common_.shutdown_grace_ms);
    options.session_timeout = std::chrono::milliseconds(common_.session_timeout_ms);
    options.group_protocol = group_protocol_;
    options.commit_interval = std::chrono::milliseconds(std::max(10, common_.commit_interval_ms));
    options.statistics_interval = std::chrono::milliseconds(common_.statistics_interval_ms);
    options.on_revoked = on_revoked_;
    options.fair = fair_;
    options.read_ahead = read_ahead_;
    options.handoff_batch = handoff_batch_;
    options.concurrency_limit = concurrency_limit_;
    kafka::ConsumerRuntime runtime(settings, options, catalog_, producer, registry_, health);

    g_running.store(&runtime);
    install_stop_signals(&stop_running_runtime);
    int rc = runtime.run(handler);
    g_running.store(nullptr);
    http_->stop();
    spdlog::info("exiting with {}", rc);
    return rc;
  } catch (const std::exception& e) {
    spdlog::error("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace agentline::service
