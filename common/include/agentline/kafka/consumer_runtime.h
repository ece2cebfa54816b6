#pragma once
// The consumer runtime every service runs on.
//
// Delivery contract (at-least-once): a record's offset is committed only when its handler
// has returned AND Kafka has acknowledged every record produced on its behalf (its outputs,
// or its retry-tier/DLQ copy). Handlers run on a pool of `max_in_flight` threads, in
// parallel even inside one partition; per partition the committed offset is the end of the
// contiguous finished prefix, so a crash replays at most the unfinished tail.
//
// Failures: a handler returns a Failure (see failure.h). Bad input goes to the DLQ at once;
// transient failures go through the group's retry tiers (each tier partition is paused until
// its head record is due), then to the DLQ. An exception escaping a handler counts as a
// transient failure of class "unhandled_exception".
//
// Rebalances: revoked partitions stop dispatching; in-flight work of those partitions gets
// up to `revoke_timeout` to finish; what finished is committed before the partitions go.
// Priorities (ConsumerOptions::priority_order): see there.
// Shutdown (request_stop(), e.g. on SIGTERM): stop fetching, let in-flight work finish
// within `shutdown_grace`, commit, close.
//
// Data loss: when a partition's committed offset lies below the log start (records removed
// by retention or the embedded broker's cap before this group read them), the runtime counts
// the missing records in agentline_consumer_records_lost_total, logs an error and marks the
// process not ready, instead of silently resetting.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/failure.h"
#include "agentline/kafka/record.h"
#include "agentline/kafka/topic_catalog.h"

namespace prometheus {
class Registry;
}
namespace agentline::observability {
class HealthState;
}

namespace agentline::kafka {

class Producer;

// Handed to a handler for the records it produces. Thread-compatible: one per record.
class Emitter {
 public:
  // Keeps the input's offset uncommitted while it lives, for a record produced later on behalf of
  // several inputs (the router's coalesced job progress): whoever produces that record drops the
  // hold once Kafka has acknowledged it, after fail() when it could not be delivered (the input
  // is then not committed, as for a failed emit). Thread-safe; may be dropped on any thread.
  class Hold {
   public:
    virtual ~Hold() = default;
    virtual void fail() = 0;
  };

  virtual ~Emitter() = default;
  // Produces `record`; the input's offset is held until Kafka acknowledges it.
  virtual void emit(OutgoingRecord record) = 0;
  // A hold on the input's offset; null from an emitter whose input has no offset to hold.
  virtual std::shared_ptr<Hold> hold() { return nullptr; }
};

using Handler = std::function<std::optional<Failure>(const InboundRecord&, Emitter&)>;

// The consumer group protocol. kConsumer is KIP-848's (the broker assigns partitions
// incrementally; the session timeout is the broker's group.consumer.session.timeout.ms), kClassic
// the JoinGroup/SyncGroup protocol (session_timeout below applies). kAuto uses kConsumer and
// falls back to kClassic, once, when the group coordinator does not support it.
enum class GroupProtocol { kAuto, kConsumer, kClassic };
// "auto", "consumer", "classic"; throws std::invalid_argument on anything else.
GroupProtocol parse_group_protocol(const std::string& name);
const char* group_protocol_name(GroupProtocol protocol);

struct ConsumerOptions {
  std::string service;  // the failing service named in DLQ headers, metric label
  std::string group_id;
  std::vector<std::string> topics;  // full names; the group's retry tiers are added
  // Full topic names, highest priority first. Workers always take the highest-priority record
  // waiting; a topic's partitions are paused while a higher-priority topic has records waiting
  // locally, so a backlog of low-priority work never delays high-priority work by more than
  // the handlers already running. Retry-tier records rank first (they have waited their
  // delay already). Empty: one class, first come first served.
  std::vector<std::string> priority_order;
  // Full topic names this group only watches; another group owns them and dead-letters their bad
  // records. A record over the header limits there is skipped here, not dead-lettered twice.
  std::vector<std::string> observed_topics;
  int max_in_flight = 16;
  // Records a worker takes from the dispatch queue at once and runs one after another; one
  // worker is woken per this many records dispatched. 1 suits handlers that wait (an LLM call, a
  // check): each record gets its own worker. Handlers that only compute (the router's) run more
  // records per wake-up and thread switch with more.
  int handoff_batch = 1;
  std::chrono::milliseconds shutdown_grace{20000};
  std::chrono::milliseconds revoke_timeout{10000};
  std::chrono::milliseconds commit_interval{1000};
  std::chrono::milliseconds session_timeout{10000};  // classic protocol only
  GroupProtocol group_protocol = GroupProtocol::kAuto;
  std::chrono::milliseconds statistics_interval{5000};  // consumer-lag gauges; 0 disables
  // Fair queuing inside each priority class (common/src/kafka/fair_queue.h). `key` names the
  // queue a record waits in (dev-fix-worker: its tenant); without it each class is first come,
  // first served. Keys share dispatches by `weight` (unset: 1 each). `admit`, when set, is asked
  // on the poll thread before a record is dispatched: zero admits it (and charges it), more holds
  // its key that long while the other keys go on — the record waits in place, never re-produced.
  struct FairQueuing {
    std::function<std::string(const InboundRecord&)> key;
    std::function<double(const std::string& key)> weight;
    std::function<std::chrono::milliseconds(const std::string& key, const InboundRecord&)> admit;
  };
  FairQueuing fair;
  // Handlers running at most, asked on the poll thread before dispatching (an adaptive
  // concurrency limit, dev-fix-worker's); clamped to 1..max_in_flight. Unset: max_in_flight.
  std::function<int()> concurrency_limit;
  // Records fetched ahead and waiting locally before fetching pauses (0: 16 x max_in_flight).
  // Fair queuing sees this far ahead: a key's backlog beyond it in the same partitions is still
  // read in order.
  std::size_t read_ahead = 0;
  // Their bytes (keys, values, headers) that pause fetching too, whatever their count: 1 MB
  // records (Kafka's default maximum) would otherwise let the default 16 x max_in_flight read
  // ahead reach a gigabyte. librdkafka's own prefetch queue is bounded apart
  // (queued.max.messages.kbytes). 0: 64 MiB.
  std::size_t read_ahead_bytes = 0;
  // Called on the poll thread when partitions leave this member (a rebalance, or the close at
  // shutdown), after their finished work was committed: a service that keeps state per
  // partition (outbox-uploader's staged items) hands it to the next owner here.
  std::function<void(const std::vector<std::pair<std::string, std::int32_t>>& revoked)> on_revoked;
};

class ConsumerRuntime {
 public:
  ConsumerRuntime(KafkaSettings settings, ConsumerOptions options, const TopicCatalog& catalog,
                  std::shared_ptr<Producer> producer, std::shared_ptr<prometheus::Registry> registry,
                  std::shared_ptr<observability::HealthState> health);
  ~ConsumerRuntime();
  ConsumerRuntime(const ConsumerRuntime&) = delete;
  ConsumerRuntime& operator=(const ConsumerRuntime&) = delete;

  // Consumes until request_stop(), then drains and closes. Returns 0 after a clean drain,
  // 1 when a produced record could not be delivered (the process should restart and
  // replay from the committed offsets).
  int run(const Handler& handler);
  // Async-signal-safe: only sets a flag.
  void request_stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::kafka
