#pragma once
// outbox-uploader's two halves:
//  - stage(): the consumer handler. It validates a deploy.requests record (a QA_PASSED file
//    or a DEPLOY_ITEM) and stages it in the outbox; the runtime commits the offset only
//    after it returns, so nothing read is lost and a redelivery is a no-op.
//  - the upload loop (start()/stop()): claims due items in batches sized by the adaptive
//    batcher, uploads them on `concurrency` threads through the target's circuit breaker,
//    schedules retries (exponential backoff with jitter; Retry-After honoured and a 429
//    pauses the whole target), marks items failed after `max_attempts` (with a DLQ record),
//    and publishes UPLOADED / UPLOAD_FAILED events. Generation never runs again.
// Thread-safe: stage() runs on the runtime's workers while the loop runs on its own thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // Lets the running batch finish, then returns.
  void stop();
  // One pass: publish owed events, upload one batch. Returns the items attempted.
  int run_once();

  void append_metrics(std::vector<prometheus::MetricFamily>& families);
  std::string stats_json();

 private:
  void publish_owed_events();
  void upload_batch(std::vector<OutboxItem>& batch);
  // Runs `work` on this thread and on up to --concurrency - 1 helpers, for `items` items; returns
  // when every one has ended.
  void run_beside_helpers(std::size_t items, const std::function<void()>& work);
  // What the store records of an upload (written for the whole batch at once), counted and
  // logged now.
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
  // The batch's uploads beyond the pass thread's own: up to concurrency - 1 threads, retired
  // after a minute idle.
  resilience::WorkerPool helpers_;

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
