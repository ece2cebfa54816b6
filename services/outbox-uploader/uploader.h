#pragma once
// outbox-uploader's two halves:
//  - stage(): the consumer handler. It validates a deploy.requests record (a QA_PASSED file
//    or a DEPLOY_ITEM) and stages it in the outbox; the runtime commits the offset only
//    after it returns, so nothing read is lost and a redelivery is a no-op.
//  - the upload loop (start()/stop()): a window of claimed items (as many as the adaptive
//    batcher says the target uploads in about `batch.target`) uploaded continuously on
//    `concurrency` threads through the target's circuit breaker; a pass thread settles what
//    finished, marks acknowledged events and claims more in one transaction, then sends the
//    UPLOADED / UPLOAD_FAILED events without waiting for Kafka (they stay "on their way" until
//    marked, so none is sent twice by one process). Retries: exponential backoff with jitter;
//    Retry-After honoured and a 429 pauses the whole target; failed after `max_attempts` (with
//    a DLQ record). Generation never runs again.
// Thread-safe: stage() runs on the runtime's workers while the loop runs on its own thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/resilience/adaptive_batcher.h"
#include "agentline/resilience/circuit_breaker.h"
#include "agentline/resilience/retry_policy.h"
#include "agentline/resilience/worker_pool.h"
#include "agentline/service/periodic_task.h"
#include "outbox_store.h"
#include "targets.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
class Histogram;
struct MetricFamily;
}  // namespace prometheus

namespace agentline::outbox {

struct UploaderConfig {
  int concurrency = 8;
  resilience::RetryPolicyConfig retry = [] {
    resilience::RetryPolicyConfig c;
    c.base = std::chrono::seconds(1);
    c.max_delay = std::chrono::seconds(60);
    c.max_attempts = 8;
    c.jitter = resilience::RetryPolicyConfig::Jitter::kEqual;
    return c;
  }();
  resilience::AdaptiveBatcherConfig batch = [] {
    resilience::AdaptiveBatcherConfig c;
    c.min_batch = 1;
    c.max_batch = 64;
    c.initial_batch = 16;
    c.target = std::chrono::seconds(2);
    return c;
  }();
  resilience::CircuitBreakerConfig breaker = [] {
    resilience::CircuitBreakerConfig c;
    c.window_size = 20;
    c.minimum_calls = 10;
    c.open_wait = std::chrono::seconds(10);
    c.slow_call_duration = std::chrono::milliseconds(0);
    return c;
  }();
  std::chrono::milliseconds idle_poll{500};
  // A child whose parent was never staged fails (parent_missing) this long after it was staged.
  std::chrono::milliseconds parent_wait{std::chrono::minutes(30)};
};

class Uploader {
 public:
  Uploader(UploaderConfig config, OutboxStore& store, Target& target, std::shared_ptr<kafka::Producer> producer,
           const kafka::TopicCatalog& catalog, prometheus::Registry& registry, std::string service, std::string group);
  ~Uploader();

  std::optional<kafka::Failure> stage(const kafka::InboundRecord& record);
  // Partitions left this replica (scale-in, a rebalance): uploads in flight finish first (up to
  // `wait`; no new ones start), then what it staged from them and has not uploaded goes back to
  // the same partition of its topic, as it came, with header agentline-handed-over (the next
  // owner stages it; an upload still in flight after `wait` may run twice, which the target's
  // idempotency absorbs), and is forgotten here once Kafka has it. Returns how many items.
  int hand_over(const std::vector<std::pair<std::string, std::int32_t>>& revoked,
                std::chrono::milliseconds wait = std::chrono::seconds(3));

  // Recovers items cut off by a crash, then uploads until stop().
  void start();
  // Lets the uploads running finish (items claimed and not started go back to pending),
  // settles them and publishes the owed events, then returns.
  void stop();

  void append_metrics(std::vector<prometheus::MetricFamily>& families);
  std::string stats_json();

 private:
  // One pass of the upload loop (its PeriodicTask): waits while uploads run until enough of them
  // finished to be worth a transaction, then settles, marks and claims (OutboxStore::pass) and
  // sends the owed events. True while uploads are outstanding.
  bool pass();
  // Sends the owed events not on their way yet; Kafka's acknowledgements are marked at the next pass.
  void send_owed_events();
  // Wakes a pass waiting for uploads (after a flag it reads has changed).
  void wake_pass();
  // Events became owed (settled items, a reannounced one, a refused delivery).
  void events_owed();
  // An upload thread: takes claimed items until none is left.
  void upload_claimed();
  OutboxStore::Settlement upload_one(const OutboxItem& item);
  // Starts upload threads for what is claimed, up to --upload-concurrency (mu_ held).
  void start_uploaders_locked();
  // What the store records of an upload (written at the next pass), counted and logged now.
  OutboxStore::Settlement settle(const OutboxItem& item, const UploadOutcome& outcome,
                                 std::chrono::steady_clock::duration took);

  UploaderConfig config_;
  OutboxStore& store_;
  Target& target_;
  std::shared_ptr<kafka::Producer> producer_;
  events::MessageValidator validator_;
  kafka::FailureRouter dead_letters_;
  std::string events_topic_;
  std::string group_;
  resilience::RetryPolicy retry_;
  resilience::AdaptiveBatcher batcher_;
  resilience::CircuitBreaker breaker_;
  // The upload threads: up to `concurrency`, retired after a minute idle.
  resilience::WorkerPool uploaders_;

  // The window, shared by the pass thread, the upload threads and stage().
  std::mutex mu_;
  std::condition_variable finished_;              // an upload finished or the pass should run
  std::deque<OutboxItem> claimed_;                // claimed, not started
  std::vector<OutboxStore::Settlement> settled_;  // finished, written at the next pass
  std::chrono::steady_clock::time_point first_settled_;
  int outstanding_ = 0;  // claimed and not in settled_ yet
  int running_uploaders_ = 0;
  bool staged_since_pass_ = false;
  std::chrono::steady_clock::time_point window_since_;  // the batcher's clock

  // The events sent and not marked yet, shared with Kafka's delivery callbacks (which touch only
  // this, so one outliving the uploader after a flush at stop timed out is harmless).
  struct Announcements {
    std::mutex mu;
    std::set<std::int64_t> on_their_way;      // sent, not yet marked or refused
    std::vector<std::int64_t> acknowledged;   // Kafka has them: marked at the next pass
    bool owed = true;                         // events may be owed that are not on their way
    service::PeriodicTask* passes = nullptr;  // woken to mark them; cleared at stop
  };
  std::shared_ptr<Announcements> announcements_ = std::make_shared<Announcements>();

  std::atomic<bool> stop_{false};
  std::unique_ptr<service::PeriodicTask> passes_;
  std::atomic<std::int64_t> paused_until_ms_{0};  // a 429's Retry-After pauses the target
  std::atomic<bool> handing_over_{false};         // no new claims while a hand-over waits
  std::int64_t next_orphan_check_ms_ = 0;         // the upload loop's thread only

  prometheus::Family<prometheus::Counter>* staged_;
  prometheus::Family<prometheus::Counter>* uploads_;
  prometheus::Family<prometheus::Counter>* published_;
  prometheus::Counter* handed_over_;
  prometheus::Histogram* duration_;
  prometheus::Histogram* end_to_end_;
  prometheus::Gauge* batch_size_;
};

}  // namespace agentline::outbox
