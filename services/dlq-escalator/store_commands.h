#pragma once
// The DLQ store read and replayed, from the command line and over HTTP:
//   dlq-escalator list   [--job J] [--task T] [--reason R] [--topic T] [--since S] [--until U] [--json]
//   dlq-escalator replay [same filters] [--to TOPIC] [--dry-run] [--rate N] [--max-replays N]
//   POST /dlq/list, POST /dlq/replay (admin routes of the running service, docs/delivery.md)
// The commands read the service's options (--db, --state-dir, --bootstrap-servers, -X, the
// config file and AGENTLINE_* variables), so in a pod they find the same store and brokers.
#include <memory>
#include <mutex>
#include <optional>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/producer.h"
#include "agentline/service/service_host.h"
#include "dlq_store.h"

namespace agentline::dlq {

// A value when argv[1] is "list" or "replay": the command ran, exit with it (1: it failed;
// 2: bad options or no store at --db).
std::optional<int> run_store_command(int argc, char** argv);

// The store's admin routes and its metric (agentline_dlq_stored_records by reason) on a
// running service; replays go through a producer made on the first one. Thread-safe (replays
// run one at a time).
class StoreRoutes {
 public:
  StoreRoutes(DlqStore& store, kafka::KafkaSettings settings);
  void add_to(service::ServiceHost& host);

 private:
  DlqStore& store_;
  kafka::KafkaSettings settings_;
  std::mutex replay_mutex_;
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace agentline::dlq
