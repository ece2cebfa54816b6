#pragma once
// What every service binary shares: common options (broker, catalog, prefix, HTTP port,
// parallelism, drain), JSON logging, one HTTP server (/metrics, /healthz, /readyz, the admin
// routes), the idempotent producer, the consumer runtime, and SIGTERM/SIGINT handling. A
// service adds its own options, configures, builds its handler from the catalog and registry,
// and calls run() — or serve() when it has no consumer group (the gateway).
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agentline/config/container_resources.h"
#include "agentline/config/options.h"
#include "agentline/kafka/client_config.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/topic_catalog.h"
#include "agentline/net/http_server.h"
#include "agentline/observability/operational_routes.h"
#include "agentline/service/connection_options.h"

namespace prometheus {
class Registry;
}

namespace agentline::service {

struct CommonOptions : ConnectionOptions {
  std::string group_id;  // empty: the service name
  // Loopback unless told otherwise (docs/security.md): a pod sets 0.0.0.0 for its probes.
  std::string http_host = "127.0.0.1";
  int http_port = 9400;
  // The bearer token of the admin routes (and the gateway's API); empty: none.
  std::string api_token_file;
  std::string api_token;
  // Admin routes (the gateway's API) open without a token on an address that is not loopback.
  bool insecure_no_auth = false;
  std::string log_level = "info";
  int max_in_flight = 0;  // 0: sized by the service's rule (set_in_flight_rule), else 16
  int shutdown_grace_ms = 20000;
  int session_timeout_ms = 10000;       // classic group protocol only
  std::string group_protocol = "auto";  // auto, consumer (KIP-848) or classic
  int commit_interval_ms = 1000;
  int statistics_interval_ms = 5000;
};

class ServiceHost {
 public:
  // `topics` are logical catalog names ("tasks.submitted").
  ServiceHost(std::string service, std::string description, std::vector<std::string> topics);
  ~ServiceHost();

  config::OptionSet& options() { return options_; }
  // Parses argv, sets up logging and the catalog, then runs `build`: the service's own set-up
  // from its options. A value means: exit with it now (0: help printed; 2: a configuration
  // error, from the options or thrown by `build`, already reported).
  std::optional<int> configure(int argc, char** argv, const std::function<void()>& build = {});

  const CommonOptions& common() const { return common_; }
  const kafka::TopicCatalog& catalog() const { return catalog_; }
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Readiness and liveness of the process; a service may add conditions ("sandbox").
  std::shared_ptr<observability::HealthState> health() const { return health_; }

  // The process's HTTP server, after configure(): its options and routes may change until
  // run() or serve() starts it with the operational routes.
  net::HttpServer& http() { return *http_; }
  // An admin route: the request body in, (status, JSON body) out; behind the token, on the
  // server's admin thread (docs/security.md).
  using AdminRoute = std::function<std::pair<int, std::string>(const std::string& body)>;
  void add_admin_route(const std::string& method, const std::string& path, AdminRoute route);
  // Scrape-time metrics of the service (call before run()).
  void add_metrics(observability::MetricCollector collector) { collectors_.push_back(std::move(collector)); }
  kafka::KafkaSettings kafka_settings() const { return common_.kafka_settings(); }
  // Consumer options (priorities): applied to the runtime run() builds.
  void set_priority_order(std::vector<std::string> logical_topics) { priority_order_ = std::move(logical_topics); }
  // Fair queuing between keys inside each priority class, how far ahead to read for it, and an
  // adaptive limit on handlers running (ConsumerOptions::fair, read_ahead, concurrency_limit).
  void set_fair_queuing(kafka::ConsumerOptions::FairQueuing fair, std::size_t read_ahead) {
    fair_ = std::move(fair);
    read_ahead_ = read_ahead;
  }
  void set_concurrency_limit(std::function<int()> limit) { concurrency_limit_ = std::move(limit); }
  // Records a worker runs per wake-up (ConsumerOptions::handoff_batch): for handlers that never wait.
  void set_handoff_batch(int records) { handoff_batch_ = records; }
  // Topics (logical names) this service only watches; their owner dead-letters bad records.
  void set_observed_topics(std::vector<std::string> logical_topics) { observed_topics_ = std::move(logical_topics); }

  // Called when partitions leave this member (ConsumerOptions::on_revoked).
  void set_on_revoked(std::function<void(const std::vector<std::pair<std::string, std::int32_t>>&)> fn) {
    on_revoked_ = std::move(fn);
  }

  // How a service that is bound by the machine (qa-worker's checks) sizes --max-in-flight when it
  // is 0: from the container's CPU and memory limits. Set before configure().
  using SizingRule = std::function<int(const config::ContainerResources&)>;
  void set_in_flight_rule(SizingRule rule) { in_flight_rule_ = std::move(rule); }
  // A pool's size: `configured` when positive, else `rule` applied to the container's limits
  // (ContainerResources, cgroup v2/v1), at least 1, else 16. Logged, and exported as
  // agentline_pool_size{pool,source}: source option, container or default.
  int size_pool(const std::string& pool, int configured, const SizingRule& rule);

  // Runs `open` (what the service cannot run without, such as its store); false after
  // logging why ("cannot open <what>: ..."): the service exits 1.
  bool opened(const std::string& what, const std::function<void()>& open) const;

  // Serves HTTP, consumes until SIGTERM/SIGINT and drains. Returns the exit code.
  int run(const kafka::Handler& handler);
  // Serves HTTP and runs `body` (which returns once service::stop_requested(), with the exit
  // code) for a process without a consumer group. An exception is fatal: logged, exit 1.
  int serve(const std::function<int()>& body);

 private:
  std::string service_;
  SizingRule in_flight_rule_;
  kafka::ConsumerOptions::FairQueuing fair_;
  std::size_t read_ahead_ = 0;
  int handoff_batch_ = 1;
  std::function<int()> concurrency_limit_;
  std::vector<std::string> logical_topics_;
  config::OptionSet options_;
  CommonOptions common_;
  kafka::TopicCatalog catalog_;
  kafka::GroupProtocol group_protocol_ = kafka::GroupProtocol::kAuto;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<net::HttpServer> http_;
  std::vector<observability::MetricCollector> collectors_;
  std::shared_ptr<observability::HealthState> health_;
  std::vector<std::string> priority_order_;
  std::vector<std::string> observed_topics_;
  std::function<void(const std::vector<std::pair<std::string, std::int32_t>>&)> on_revoked_;

  void start_http();
};

}  // namespace agentline::service
