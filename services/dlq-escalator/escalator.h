#pragma once
// dlq-escalator's service half:
//  - handle(): the consumer handler for the DLQ. Stores the record, counts it by reason, and
//    emits an ESCALATED event (deterministic id) to the escalations topic for the planner.
//    It never fails a DLQ record (that would dead-letter a dead letter): a store that cannot
//    write holds consumption (backoff) instead.
//  - the digest loop: once the oldest record not yet digested is `window` old, one message
//    (Slack-compatible JSON: text + blocks) summarizes every undigested record, so an outage
//    that dead-letters thousands of records sends one message per window, not thousands. A
//    failed POST is retried at the next window with the records accumulated.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/service/periodic_task.h"
#include "dlq_store.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace agentline::config {
class OptionSet;
}

namespace agentline::dlq {

struct EscalatorConfig {
  std::string escalations_topic;  // full name
  std::string digest_url;         // empty: no digest
  std::string digest_token;       // bearer token for the digest webhook, when set
  std::chrono::milliseconds digest_window{60000};
  std::chrono::milliseconds digest_timeout{10000};
  std::string dashboard_hint;  // e.g. "dlq-escalator list --since 1h", shown in the digest
};

// The service's own options: --db, --digest-url, --digest-token-file, --digest-window-ms,
// --min-free-mb; resolve() fills the config from them once parsed (throws when wrong).
struct EscalatorOptions {
  std::string db;  // default: <state-dir>/dlq-escalator.db
  std::string digest_token_file;
  int min_free_mb = 64;
  EscalatorConfig config;

  void bind(config::OptionSet& options);
  void resolve(const std::string& state_dir, const std::string& escalations_topic);
};

class Escalator {
 public:
  Escalator(EscalatorConfig config, DlqStore& store, prometheus::Registry& registry);
  ~Escalator();

  std::optional<kafka::Failure> handle(const kafka::InboundRecord& record, kafka::Emitter& out);

  void start_digest();
  void stop_digest();
  // Sends a digest now if any record is undigested and at least `window` old (or `force`).
  // Returns the records it covered (0: nothing sent).
  std::int64_t digest_once(bool force = false);

  // The digest message for `records` (of `total` undigested), Slack-compatible.
  static std::string digest_message(const std::vector<StoredRecord>& records, std::int64_t total,
                                    const std::string& hint);

 private:
  EscalatorConfig config_;
  DlqStore& store_;
  events::MessageValidator validator_;
  std::unique_ptr<service::PeriodicTask> digest_;
  prometheus::Family<prometheus::Counter>* records_;
  prometheus::Family<prometheus::Counter>* escalated_;
  prometheus::Family<prometheus::Counter>* digests_;
};

}  // namespace agentline::dlq
