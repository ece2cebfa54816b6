#include "agentline/kafka/consumer_runtime.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <tuple>

#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/offset_tracker.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/health.h"
#include "agentline/resilience/clock.h"
#include "kafka/commit_metadata.h"
#include "kafka/consumer_metrics.h"
#include "kafka/consumer_statistics.h"
#include "kafka/fair_queue.h"
#include "kafka/flow_control.h"
#include "kafka/handles.h"
#include "kafka/in_flight.h"
#include "kafka/job.h"
#include "kafka/mutex.h"
#include "kafka/partition_table.h"
#include "kafka/protocol_probe.h"
#include "kafka/rebalance.h"
#include "kafka/retry_tier_gate.h"

namespace agentline::kafka {

using namespace detail;
using Clock = std::chrono::steady_clock;

using resilience::now_ms;

namespace {
constexpr std::size_t kDefaultReadAheadBytes = std::size_t{64} << 20;

// What a record waiting locally weighs for flow control: its key, value and headers.
struct RecordBytes {
  std::size_t operator()(const InboundRecord& r) const {
    std::size_t n = sizeof(InboundRecord) + r.value.size() + (r.key ? r.key->size() : 0);
    for (const auto& h : r.headers) n += h.key.size() + h.value.size();
    return n;
  }
};
}  // namespace

struct ConsumerRuntime::Impl {
  KafkaSettings settings;
  ConsumerOptions options;
  std::shared_ptr<Producer> producer;
  std::shared_ptr<prometheus::Registry> registry;
  std::shared_ptr<observability::HealthState> health;
  FailureRouter router;
  KafkaPtr rk;
  const Handler* handler = nullptr;

  std::atomic<bool> stop_requested{false};
  std::atomic<bool> fatal{false};
  // Mirrors the "kafka" readiness condition. Written only on the poll thread (error and
  // rebalance callbacks are served from consumer_poll there).
  std::atomic<bool> kafka_ok{false};
  std::atomic<bool> brokers_down{false};  // "all brokers down" was reported and no broker is back yet
  // The group protocol in use (kConsumer or kClassic), and, under kAuto, whether the group
  // coordinator refused kConsumer before any assignment: run() then builds a classic client.
  // Poll thread only.
  GroupProtocol protocol = GroupProtocol::kConsumer;
  bool ever_assigned = false;
  bool fallback_to_classic = false;
  // "cannot authenticate: ..." while the brokers refuse the credentials. Poll thread only
  // (and the constructor, before it).
  std::string auth_failure;

  // Guards what is marked GUARDED_BY(mutex): the compiler checks it (mutex.h).
  Mutex mutex;
  // Two condition variables, so that a finished job wakes only the poll thread and new work only
  // the workers (one shared variable woke every worker per finished job).
  std::condition_variable changed;     // a handler returned or a record was acknowledged: poll thread
  std::condition_variable work_ready;  // work arrived, or the workers stop: worker threads
  PartitionTable partitions GUARDED_BY(mutex);
  std::deque<std::shared_ptr<Job>> work GUARDED_BY(mutex);
  // Records whose handler asked to back off; run again once hold_until_ms has passed.
  std::deque<std::shared_ptr<Job>> deferred GUARDED_BY(mutex);
  std::int64_t hold_until_ms GUARDED_BY(mutex) = 0;
  // Records whose handler said their key must wait (kHoldKey), for the poll thread to put back
  // at the head of their key's queue; the key waits until `until_ms`.
  struct Returned {
    InboundRecord record;
    std::int64_t until_ms;
  };
  std::deque<Returned> returned GUARDED_BY(mutex);
  // Records past dispatch: handlers running and outputs awaiting acknowledgement (in_flight.h).
  InFlight in_flight GUARDED_BY(mutex){options.max_in_flight};
  bool workers_stop GUARDED_BY(mutex) = false;
  std::atomic<bool> workers_stopping{false};  // workers_stop, read between the jobs a worker took
  std::vector<std::thread> workers;

  // Poll-thread only. Records fetched but not dispatched, one fair queue per priority rank.
  std::vector<FairQueue<InboundRecord, RecordBytes>> backlogs;
  // What a retry tier's head record does: run, wait in memory, or pause its partition
  // (retry_tier_gate.h).
  RetryTierGate retry_gate;
  std::map<std::string, int> topic_rank;  // missing: the lowest rank
  Clock::time_point last_commit = Clock::now();

  std::unique_ptr<ConsumerMetrics> metrics;
  std::unique_ptr<ConsumerStatistics> statistics;  // stats thread only

  Impl(KafkaSettings s, ConsumerOptions o, const TopicCatalog& catalog, std::shared_ptr<Producer> p,
       std::shared_ptr<prometheus::Registry> reg, std::shared_ptr<observability::HealthState> h)
      : settings(std::move(s)),
        options(std::move(o)),
        producer(std::move(p)),
        registry(std::move(reg)),
        health(std::move(h)),
        router(options.service, options.group_id, catalog.retry_tiers(options.group_id), catalog.dlq_topic()) {
    for (const auto& tier : router.tiers()) options.topics.push_back(tier.topic);
    for (std::size_t i = 0; i < options.priority_order.size(); ++i) {
      topic_rank.emplace(options.priority_order[i], static_cast<int>(i));
    }
    backlogs.resize(options.priority_order.size() + 1);
    metrics = std::make_unique<ConsumerMetrics>(*registry, options.service, options.topics);
    statistics = std::make_unique<ConsumerStatistics>(metrics->lag);
  }

  int lowest_rank() const { return static_cast<int>(backlogs.size()) - 1; }
  // A topic's rank. Retry tiers rank highest: their records have already waited out their
  // delay. (Ranking a retried record by its original topic would reorder records inside one
  // tier partition, which the offset bookkeeping relies on.)
  int partition_rank(const std::string& topic) const {
    if (router.is_retry_topic(topic)) return 0;
    auto it = topic_rank.find(topic);
    return it == topic_rank.end() ? lowest_rank() : it->second;
  }
  // Fair queuing dispatches a partition's records out of offset order: they are tracked as they
  // are fetched, so a commit never passes one still waiting. Retry tiers keep offset order (their
  // records wait for due times in order) and are tracked at dispatch, as without fair queuing.
  bool tracked_at_fetch(const std::string& topic) const {
    return static_cast<bool>(options.fair.key) && !router.is_retry_topic(topic);
  }
  // The key a record waits under in its rank's fair queue: "" (one queue) without fair queuing,
  // and for a retry tier's records, which keep their offset order (tracked at dispatch).
  std::string fair_key(const InboundRecord& record) const {
    return tracked_at_fetch(record.topic) ? options.fair.key(record) : std::string();
  }
  double fair_weight(const std::string& key) const {
    return options.fair.weight && !key.empty() ? options.fair.weight(key) : 1.0;
  }
  std::size_t backlog_size() const {
    std::size_t n = 0;
    for (const auto& q : backlogs) n += q.size();
    return n;
  }
  std::size_t backlog_bytes() const {
    std::size_t n = 0;
    for (const auto& q : backlogs) n += q.bytes();
    return n;
  }
  // Whether the poll loop may take more of what librdkafka has fetched before flow control looks.
  bool backlog_has_room() const { return backlog_size() < flow.backlog_bound() && backlog_bytes() < flow.byte_bound(); }
  template <typename Pred>
  void erase_backlog_if(Pred pred) {
    for (auto& q : backlogs) q.erase_if(pred);
  }

  // Builds the consumer client for `p` (rk), subscribes it to the topics; false if the
  // subscription failed.
  void create_client(GroupProtocol p);
  bool subscribe();
  // librdkafka raised a fatal error: stop, or under kAuto fall back to the classic protocol
  // when the brokers do not support the consumer protocol.
  void on_fatal_error();
  void start_workers();
  void stop_workers();
  void worker_loop();
  void run_job(const std::shared_ptr<Job>& job);
  // A job settled (its handler returned and its outputs were acknowledged): its offset is done,
  // or, when an output failed, the process stops with it uncommitted.
  void release(Job& job);
  const std::shared_ptr<const JobEmitter::Send> send = std::make_shared<const JobEmitter::Send>(
      [this](const OutgoingRecord& r, DeliveryCallback done) { producer->send(r, std::move(done)); });
  const std::shared_ptr<const JobEmitter::Finished> finished =
      std::make_shared<const JobEmitter::Finished>([this](Job& job) { release(job); });
  // Serves librdkafka once; true when it returned something (a record, an error, an EOF).
  bool poll_once(int timeout_ms);
  // Pauses and resumes partitions for priority and backpressure (flow_control.h): the local
  // backlog's bound is 16 x max_in_flight, well above max_in_flight so that a worker that frees
  // up always finds a record waiting.
  FlowControl flow{
      options.read_ahead > 0 ? options.read_ahead : static_cast<std::size_t>(std::max(1, options.max_in_flight)) * 16,
      options.read_ahead_bytes > 0 ? options.read_ahead_bytes : kDefaultReadAheadBytes};
  bool backlog_waiting();
  void dispatch_backlog();
  void dispatch_held();
  // Puts records back whose key must wait (kHoldKey), and holds their keys.
  void take_back_returned();
  // `tracked`: its offset was tracked when it was fetched (tracked_at_fetch).
  bool start_job(const std::shared_ptr<PartitionState>& state, InboundRecord&& rec, bool tracked = false)
      REQUIRES(mutex);
  int ms_until_due();
  void update_backpressure();
  void resume_due_partitions();
  void commit(bool sync, const std::set<PartitionId>* only = nullptr);
  void on_assign(rd_kafka_topic_partition_list_t* parts);
  void on_revoke(rd_kafka_topic_partition_list_t* parts);
  // The committed offsets of `parts`: reports records removed before the group read them (data
  // loss), and returns what previous owners finished beyond each (commit_metadata.h).
  std::map<PartitionId, std::set<std::int64_t>> read_committed(rd_kafka_topic_partition_list_t* parts);
  // A record the previous owner finished (commit_metadata.h): taken as done, true. Its offset is
  // tracked as started (unless `tracked` already) and finished.
  bool finished_before(PartitionState& state, const InboundRecord& rec, bool tracked) REQUIRES(mutex);
  void pause_or_resume(const std::vector<PartitionId>& ids, bool pause);
  void drain();
  void on_stats(const char* json, size_t len);
  // Readiness "kafka" = true; a map update only on the transition, not per record.
  void mark_connected() {
    if (!kafka_ok.exchange(true)) {
      auth_failure.clear();
      health->set_condition("kafka", true);
    }
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque);
  static int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque);
  static void error_cb(rd_kafka_t*, int err, const char* reason, void* opaque);
};

void ConsumerRuntime::Impl::start_workers() {
  for (int i = 0; i < std::max(1, options.max_in_flight); ++i) workers.emplace_back([this] { worker_loop(); });
}

void ConsumerRuntime::Impl::stop_workers() {
  {
    Lock lock(mutex);
    workers_stop = true;
    workers_stopping.store(true, std::memory_order_relaxed);
    // Records dispatched but not started are dropped uncommitted: the next owner reads them.
    in_flight.dropped(static_cast<int>(work.size()));
    work.clear();
  }
  work_ready.notify_all();
  for (auto& w : workers) w.join();
  workers.clear();
}

void ConsumerRuntime::Impl::worker_loop() {
  const std::size_t batch = static_cast<std::size_t>(std::max(1, options.handoff_batch));
  std::vector<std::shared_ptr<Job>> jobs;
  for (;;) {
    {
      Lock lock(mutex);
      while (!workers_stop && work.empty()) lock.wait(work_ready);
      if (work.empty()) return;
      while (!work.empty() && jobs.size() < batch) {
        jobs.push_back(std::move(work.front()));
        work.pop_front();
      }
    }
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (i > 0 && workers_stopping.load(std::memory_order_relaxed)) {
        // Taken but not started when the workers stopped: dropped uncommitted like the queue's.
        Lock lock(mutex);
        in_flight.dropped(static_cast<int>(jobs.size() - i));
        break;
      }
      run_job(jobs[i]);
    }
    jobs.clear();
  }
}

void ConsumerRuntime::Impl::run_job(const std::shared_ptr<Job>& job) {
  JobEmitter emitter(job, send, finished);
  auto started = Clock::now();
  std::optional<Failure> failure = invoke_handler(*handler, job->record, emitter, options.observed_topics);
  metrics->handler_seconds.Observe(std::chrono::duration<double>(Clock::now() - started).count());
  const auto& rec = job->record;
  if (failure && (failure->kind == FailureKind::kHoldKey || failure->kind == FailureKind::kBackoff)) {
    // The record must wait: its key (kHoldKey) or everything (kBackoff; also kHoldKey where records
    // have no keys). A fair-queued record goes back to the head of its key's queue, its offset
    // still tracked (pending), so dispatching it again later is safe: held there until the wait
    // ends (kHoldKey), or free to be chosen again by fair queuing once the whole hold ends (run
    // first from a list of their own, the records a rate limit refused were all the busiest
    // tenant's, and kept another tenant's first task waiting behind its backlog). Other records
    // wait in the deferred list, run first after the hold.
    const bool fair = tracked_at_fetch(rec.topic);
    const bool everything = failure->kind == FailureKind::kBackoff || !fair;
    const std::int64_t until = now_ms() + std::max<std::int64_t>(failure->retry_after.count(), 1);
    const std::string topic = rec.topic;  // the record may be moved back to the queue
    {
      Lock lock(mutex);
      if (everything) hold_until_ms = std::max(hold_until_ms, until);
      if (fair) {
        returned.push_back({std::move(job->record), everything ? now_ms() : until});
      } else {
        job->reset();
        deferred.push_back(job);
      }
      in_flight.deferred();
      metrics->in_flight.Set(in_flight.unfinished());
    }
    metrics->finished(topic, "deferred");
    if (everything) {
      spdlog::info("holding consumption for {} ms: {}: {}", failure->retry_after.count(), failure->error_class,
                   bounded_message(failure->message, 300));
    } else {
      spdlog::debug("holding a key for {} ms: {}: {}", failure->retry_after.count(), failure->error_class,
                    bounded_message(failure->message, 300));
    }
    changed.notify_all();
    return;
  }
  if (!failure) {
    metrics->finished(rec.topic, "ok");
  } else {
    OutgoingRecord routed = router.route(rec, *failure, now_ms());
    bool to_dlq = routed.topic == router.dlq_topic();
    if (to_dlq) {
      spdlog::warn("dead-lettering {}[{}]@{}: {}: {}", rec.topic, rec.partition, rec.offset, failure->error_class,
                   bounded_message(failure->message, 300));
      metrics->dead_letters.Add({{"error_class", failure->error_class}}).Increment();
    } else {
      spdlog::info("retrying {}[{}]@{} through {}: {}: {}", rec.topic, rec.partition, rec.offset, routed.topic,
                   failure->error_class, bounded_message(failure->message, 300));
    }
    metrics->finished(rec.topic, to_dlq ? "dead_lettered" : "retried");
    emitter.emit(std::move(routed));
  }
  {
    // The handler is done: its worker slot is free while the outputs await acknowledgement.
    Lock lock(mutex);
    in_flight.handler_returned(job->record.value.size());
    metrics->in_flight.Set(in_flight.unfinished());
  }
  changed.notify_all();
  emitter.handler_returned();
}

void ConsumerRuntime::Impl::release(Job& job) {
  {
    Lock lock(mutex);
    if (job.delivery_failed.load()) {
      // Its offset stays uncommitted; the process restarts and replays it.
      metrics->delivery_failures.Increment();
      fatal.store(true);
    } else if (!job.partition->revoked) {
      job.partition->tracker.finish(job.record.offset);
    }
    in_flight.acknowledged(job.record.value.size());
    metrics->in_flight.Set(in_flight.unfinished());
  }
  changed.notify_all();
}

void ConsumerRuntime::Impl::pause_or_resume(const std::vector<PartitionId>& ids, bool pause) {
  if (ids.empty()) return;
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(ids.size())));
  for (const auto& [topic, partition] : ids) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  rd_kafka_resp_err_t err =
      pause ? rd_kafka_pause_partitions(rk.get(), list.get()) : rd_kafka_resume_partitions(rk.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) spdlog::warn("pause/resume failed: {}", rd_kafka_err2str(err));
  // The call succeeds as a whole while single partitions fail (one no longer assigned): each says so.
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
      spdlog::warn("{} {}[{}] failed: {}", pause ? "pause" : "resume", list->elems[i].topic, list->elems[i].partition,
                   rd_kafka_err2str(list->elems[i].err));
  }
}

void ConsumerRuntime::Impl::resume_due_partitions() {
  std::vector<PartitionId> due;
  const std::int64_t now = now_ms();
  {
    Lock lock(mutex);
    for (auto& [id, state] : partitions) {
      if (state->retry_paused && state->due_ms <= now) {
        state->retry_paused = false;
        spdlog::debug("retry tier {}[{}] resumes{}", id.first, id.second,
                      state->flow_paused ? " after flow control" : "");
        if (!state->flow_paused) due.push_back(id);
      }
    }
  }
  pause_or_resume(due, false);
}

// Flow control (flow_control.h): FlowControl decides, this pauses and resumes.
void ConsumerRuntime::Impl::update_backpressure() {
  std::vector<std::size_t> waiting(backlogs.size());
  std::vector<std::size_t> bytes(backlogs.size());
  std::size_t all_records = 0;
  std::size_t all_bytes = 0;
  for (std::size_t r = 0; r < backlogs.size(); ++r) {
    all_records += (waiting[r] = backlogs[r].size());
    all_bytes += (bytes[r] = backlogs[r].bytes());
  }
  metrics->read_ahead_records.Set(static_cast<double>(all_records));
  metrics->read_ahead_bytes.Set(static_cast<double>(all_bytes));
  std::vector<PartitionId> to_pause;
  std::vector<PartitionId> to_resume;
  {
    Lock lock(mutex);
    std::size_t held = 0;
    for (const auto& [id, state] : partitions) held += state->held.size();
    // A hold pauses fetching, except with fair queuing: then records keep arriving into the
    // bounded local queue, so that when the hold ends every tenant's waiting task has its turn
    // (paused, a tenant's new task stayed in the broker for as long as a busy tenant kept a rate
    // limit refusing: holds back to back, and resumes only between them).
    flow.observe(waiting, held, (!deferred.empty() || now_ms() < hold_until_ms) && !options.fair.key, bytes);
    for (auto& [id, state] : partitions) {
      const bool want =
          flow.should_pause(state->flow_paused, static_cast<std::size_t>(state->rank), router.is_retry_topic(id.first));
      if (want == state->flow_paused) continue;
      state->flow_paused = want;
      if (state->retry_paused) continue;  // stays paused until due either way
      (want ? to_pause : to_resume).push_back(id);
    }
  }
  pause_or_resume(to_pause, true);
  pause_or_resume(to_resume, false);
}

void ConsumerRuntime::Impl::dispatch_backlog() {
  if (options.fair.key) take_back_returned();
  {
    // While held, nothing runs; afterwards the deferred records go first.
    Lock lock(mutex);
    if (options.concurrency_limit) in_flight.set_limit(options.concurrency_limit());
    const bool held = now_ms() < hold_until_ms;
    metrics->held.Set(held ? 1 : 0);
    if (held) return;
    bool pushed = false;
    while (!deferred.empty() && in_flight.has_room()) {
      auto job = std::move(deferred.front());
      deferred.pop_front();
      if (job->partition->revoked) continue;  // its next owner reads it
      in_flight.dispatched();
      metrics->in_flight.Set(in_flight.unfinished());
      work.push_back(std::move(job));
      pushed = true;
    }
    const bool more = !deferred.empty();
    lock.unlock();
    // Only when there is work: this runs on every turn of the poll loop, and a broadcast wakes
    // every idle worker (a tenth of the router's CPU went to those wakeups).
    if (pushed) work_ready.notify_all();
    if (more) return;
  }
  dispatch_held();
  // One worker woken per handoff_batch records dispatched, and one for the rest on the way out.
  struct Waker {
    std::condition_variable& cv;
    int batch;
    int pushed = 0;
    void dispatched() {
      if (++pushed % batch == 0) cv.notify_one();
    }
    ~Waker() {
      if (pushed % batch != 0) cv.notify_one();
    }
  } waker{work_ready, std::max(1, options.handoff_batch)};
  for (;;) {
    // The highest rank with a record whose key is not held, and that key.
    const std::int64_t turn = now_ms();
    FairQueue<InboundRecord, RecordBytes>* queue = nullptr;
    const std::string* next = nullptr;
    for (auto& q : backlogs) {
      if ((next = q.next(turn)) != nullptr) {
        queue = &q;
        break;
      }
    }
    if (queue == nullptr) return;
    auto& backlog = *queue;
    const std::string key = *next;
    Lock lock(mutex);
    if (!in_flight.has_room()) return;
    InboundRecord& rec = backlog.front(key);
    auto state = partitions.find({rec.topic, rec.partition});
    const bool tracked = tracked_at_fetch(rec.topic);
    if (!state || state->revoked ||
        (tracked ? !state->tracker.pending(rec.offset) : rec.offset <= state->last_started)) {
      backlog.pop(key, false);  // no longer ours, or already dispatched
      continue;
    }
    if (router.is_retry_topic(rec.topic)) {
      const std::int64_t due = retry_due_ms(rec);
      const std::int64_t now = now_ms();
      if (!state->held.empty() && rec.offset <= state->held.back().offset) {
        backlog.pop(key, false);  // fetched again after a seek: already held
        continue;
      }
      if (const auto decision = retry_gate.decide(due, now, !state->held.empty());
          decision != RetryTierGate::Decision::kRun) {
        if (decision == RetryTierGate::Decision::kHold) {
          // Due soon (or behind held records, whose order it keeps): wait in memory.
          state->held.push_back(std::move(rec));
          backlog.pop(key);
          continue;
        }
        // Due later: hold the tier's partition at this record and read it again shortly
        // before it is due. Records held before it stay in memory.
        state->retry_paused = true;
        state->due_ms = retry_gate.resume_at(due);
        spdlog::debug("retry tier {}[{}] waits at offset {}: due in {} ms", rec.topic, rec.partition, rec.offset,
                      due - now);
        PartitionId id{rec.topic, rec.partition};
        std::int64_t offset = rec.offset;
        erase_backlog_if([&](const InboundRecord& r) { return r.topic == id.first && r.partition == id.second; });
        lock.unlock();
        pause_or_resume({id}, true);
        PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(list.get(), id.first.c_str(), id.second)->offset = offset;
        if (auto* error = rd_kafka_seek_partitions(rk.get(), list.get(), 5000)) {
          spdlog::warn("seek failed on {}[{}]: {}", id.first, id.second, rd_kafka_error_string(error));
          rd_kafka_error_destroy(error);
        }
        continue;
      }
    }
    if (options.fair.admit) {
      // Asked without the lock: only this thread dispatches or revokes, so the record, its
      // partition and the room checked above stay as they are meanwhile.
      lock.unlock();
      const auto wait = options.fair.admit(key, rec);
      if (wait.count() > 0) {
        backlog.hold(key, turn + wait.count());
        continue;
      }
      lock.lock();
    }
    const bool started = start_job(state, std::move(rec), tracked);
    backlog.pop(key);
    lock.unlock();
    if (started) waker.dispatched();
  }
}

// Caller holds the mutex and has checked capacity. False: it was finished before (nothing queued).
bool ConsumerRuntime::Impl::start_job(const std::shared_ptr<PartitionState>& state, InboundRecord&& rec, bool tracked) {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("dispatch {}[{}]@{} rank {} {} ms after its timestamp", rec.topic, rec.partition, rec.offset,
                  state->rank, now_ms() - rec.timestamp_ms);
  }
  if (!tracked) {
    if (finished_before(*state, rec, false)) return false;
    state->tracker.start(rec.offset);
    state->last_started = rec.offset;
  }
  in_flight.dispatched();
  metrics->in_flight.Set(in_flight.unfinished());
  auto job = std::make_shared<Job>();
  job->record = std::move(rec);
  job->partition = state;
  metrics->consumed(job->record.topic);
  work.push_back(std::move(job));
  return true;
}

bool ConsumerRuntime::Impl::finished_before(PartitionState& state, const InboundRecord& rec, bool tracked) {
  if (state.finished_before.erase(rec.offset) == 0) return false;
  if (!tracked) {
    state.tracker.start(rec.offset);
    state.last_started = rec.offset;
  }
  state.tracker.finish(rec.offset);
  metrics->finished(rec.topic, "done_before");
  return true;
}

void ConsumerRuntime::Impl::take_back_returned() {
  std::deque<Returned> back;
  {
    Lock lock(mutex);
    back.swap(returned);
  }
  // In offset order (handlers running side by side return them in any order), pushed last
  // first, so that records of one key keep their order at its head.
  std::sort(back.begin(), back.end(), [](const Returned& a, const Returned& b) {
    return std::tie(a.record.topic, a.record.partition, a.record.offset) <
           std::tie(b.record.topic, b.record.partition, b.record.offset);
  });
  for (auto it = back.rbegin(); it != back.rend(); ++it) {
    auto& q = backlogs[static_cast<std::size_t>(partition_rank(it->record.topic))];
    const std::string key = fair_key(it->record);
    q.push_front(key, fair_weight(key), std::move(it->record));
    q.hold(key, it->until_ms);
  }
}

// Held retry records whose due time has come run first: they have waited out their delay.
void ConsumerRuntime::Impl::dispatch_held() {
  bool started = false;
  {
    Lock lock(mutex);
    if (now_ms() < hold_until_ms || !deferred.empty()) return;
    const std::int64_t now = now_ms();
    for (auto& [id, state] : partitions) {
      while (!state->held.empty() && in_flight.has_room() && retry_due_ms(state->held.front()) <= now) {
        if (state->held.front().offset > state->last_started) {
          start_job(state, std::move(state->held.front()));
          started = true;
        }
        state->held.pop_front();
      }
    }
  }
  if (started) work_ready.notify_all();
}

// How long the poll loop may block: until the next held record or paused tier is due, or a
// backoff ends.
int ConsumerRuntime::Impl::ms_until_due() {
  std::int64_t next_start = std::numeric_limits<std::int64_t>::max();
  std::int64_t next_resume = next_start;
  std::int64_t hold_until = 0;
  const std::int64_t now = now_ms();
  {
    Lock lock(mutex);
    for (const auto& [id, state] : partitions) {
      if (!state->held.empty()) next_start = std::min(next_start, retry_due_ms(state->held.front()));
      if (state->retry_paused) next_resume = std::min(next_resume, state->due_ms);
    }
    // A backoff's end: dispatching resumes then, not at the next fetch's return (up to 100 ms
    // later; a paced LLM lost a third of its calls to that).
    hold_until = hold_until_ms;
  }
  for (const auto& q : backlogs) next_start = std::min(next_start, q.next_release_ms(now));
  return poll_wait_ms(next_start, next_resume, hold_until, now);
}

// Records wait locally and may be dispatched (not while a backoff holds consumption, nor those
// whose key is held).
bool ConsumerRuntime::Impl::backlog_waiting() {
  const std::int64_t now = now_ms();
  if (std::none_of(backlogs.begin(), backlogs.end(), [&](const auto& q) { return q.next(now) != nullptr; }))
    return false;
  Lock lock(mutex);
  return deferred.empty() && now_ms() >= hold_until_ms;
}

bool ConsumerRuntime::Impl::poll_once(int timeout_ms) {
  MessagePtr msg(rd_kafka_consumer_poll(rk.get(), timeout_ms));
  if (!msg) return false;
  if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return true;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("consumer: {}", rd_kafka_message_errstr(msg.get()));
    on_fatal_error();
    return true;
  }
  mark_connected();
  InboundRecord record = to_inbound_record(msg.get());
  const int rank = partition_rank(record.topic);
  if (tracked_at_fetch(record.topic)) {
    Lock lock(mutex);
    auto state = partitions.find({record.topic, record.partition});
    if (!state || state->revoked || record.offset <= state->last_started) return true;  // not ours, or fetched again
    state->tracker.start(record.offset);
    state->last_started = record.offset;
    if (finished_before(*state, record, true)) return true;
  }
  const std::string key = fair_key(record);
  backlogs[static_cast<std::size_t>(rank)].push(key, fair_weight(key), std::move(record));
  return true;
}

void ConsumerRuntime::Impl::commit(bool sync, const std::set<PartitionId>* only) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(8));
  struct Advanced {
    std::shared_ptr<PartitionState> state;
    std::int64_t offset;
    std::string metadata;
  };
  std::vector<Advanced> advanced;
  {
    Lock lock(mutex);
    for (auto& [id, state] : partitions) {
      if (only != nullptr && !only->count(id)) continue;
      // The end of the finished prefix, and the records finished beyond it in the metadata
      // (commit_metadata.h). With only the latter, the prefix ends at the first record pending.
      const auto finished = state->tracker.finished_beyond();
      auto offset = state->tracker.committable();
      if (!offset && !finished.empty()) offset = state->tracker.first_pending();
      if (!offset || *offset < state->last_committed) continue;
      std::string metadata = encode_finished(*offset, finished);
      if (*offset == state->last_committed && metadata == state->last_metadata) continue;
      auto* p = rd_kafka_topic_partition_list_add(list.get(), id.first.c_str(), id.second);
      p->offset = *offset;
      if (!metadata.empty()) {
        // librdkafka frees it with the list.
        p->metadata = std::malloc(metadata.size());
        if (p->metadata != nullptr) {
          std::memcpy(p->metadata, metadata.data(), metadata.size());
          p->metadata_size = metadata.size();
        }
      }
      advanced.push_back({state, *offset, std::move(metadata)});
    }
  }
  if (list->cnt == 0) return;
  rd_kafka_resp_err_t err = rd_kafka_commit(rk.get(), list.get(), sync ? 0 : 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    metrics->commit_failures.Increment();
    spdlog::warn("offset commit failed: {}", rd_kafka_err2str(err));
    return;
  }
  Lock lock(mutex);
  for (auto& a : advanced) {
    if (a.offset < a.state->last_committed) continue;
    a.state->last_committed = a.offset;
    a.state->last_metadata = std::move(a.metadata);
  }
}

std::map<PartitionId, std::set<std::int64_t>> ConsumerRuntime::Impl::read_committed(
    rd_kafka_topic_partition_list_t* parts) {
  std::map<PartitionId, std::set<std::int64_t>> finished;
  PartitionListPtr committed(rd_kafka_topic_partition_list_copy(parts));
  if (rd_kafka_committed(rk.get(), committed.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return finished;
  for (int i = 0; i < committed->cnt; ++i) {
    const auto& p = committed->elems[i];
    if (p.offset < 0) continue;
    if (p.metadata != nullptr && p.metadata_size > 0) {
      auto done = decode_finished(p.offset, std::string_view(static_cast<const char*>(p.metadata), p.metadata_size));
      if (!done.empty()) finished[{p.topic, p.partition}] = std::move(done);
    }
    int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(rk.get(), p.topic, p.partition, &low, &high, 5000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      continue;
    }
    if (p.offset < low) {
      std::int64_t lost = low - p.offset;
      metrics->lost.Add({{"topic", p.topic}}).Increment(static_cast<double>(lost));
      spdlog::error(
          "DATA LOSS: {}[{}]: {} records between committed offset {} and log start {} were removed before "
          "group {} read them (retention or the embedded broker's per-partition cap)",
          p.topic, p.partition, lost, p.offset, low, options.group_id);
      health->set_condition(
          "no-data-loss", false,
          std::to_string(lost) + " records lost on " + p.topic + "[" + std::to_string(p.partition) + "]");
    }
  }
  return finished;
}

void ConsumerRuntime::Impl::on_assign(rd_kafka_topic_partition_list_t* parts) {
  metrics->rebalances.Increment();
  ever_assigned = true;
  auto finished = read_committed(parts);
  {
    Lock lock(mutex);
    std::vector<PartitionId> ids;
    for (int i = 0; i < parts->cnt; ++i) ids.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
    partitions.assign(ids, [this](const std::string& topic) { return partition_rank(topic); });
    for (auto& [id, done] : finished) {
      spdlog::info("{}[{}]: {} record(s) beyond the committed offset were finished by its previous owner", id.first,
                   id.second, done.size());
      if (auto state = partitions.find(id)) state->finished_before = std::move(done);
    }
    metrics->assigned.Set(static_cast<double>(partitions.size()));
  }
  spdlog::info("assigned {} partition(s)", parts->cnt);
  mark_connected();
}

void ConsumerRuntime::Impl::on_revoke(rd_kafka_topic_partition_list_t* parts) {
  metrics->rebalances.Increment();
  std::set<PartitionId> ids;
  for (int i = 0; i < parts->cnt; ++i) ids.insert({parts->elems[i].topic, parts->elems[i].partition});
  // Records waiting locally, and deferred ones (a backend asked to back off), are not running:
  // they must not hold the revocation up. They stay uncommitted, and the next owner reads them
  // again. (Waiting records count where they are tracked already: tracked_at_fetch.)
  std::map<PartitionId, std::size_t> deferred_here;
  {
    Lock lock(mutex);
    std::erase_if(returned, [&](const Returned& r) {
      PartitionId id{r.record.topic, r.record.partition};
      if (ids.count(id) == 0) return false;
      ++deferred_here[id];
      return true;
    });
  }
  erase_backlog_if([&](const InboundRecord& r) {
    if (ids.count({r.topic, r.partition}) == 0) return false;
    if (tracked_at_fetch(r.topic)) ++deferred_here[{r.topic, r.partition}];
    return true;
  });
  {
    Lock lock(mutex);
    std::erase_if(deferred, [&](const auto& job) {
      PartitionId id{job->record.topic, job->record.partition};
      if (ids.count(id) == 0) return false;
      ++deferred_here[id];
      return true;
    });
  }
  {
    // Finished work is committed; work still running after the timeout is abandoned and will
    // be replayed by the next owner.
    // While closing, drain() has already waited its grace period.
    const bool closing = stop_requested.load() || fatal.load();
    Lock lock(mutex);
    const auto until = Clock::now() + (closing ? std::chrono::milliseconds(0) : options.revoke_timeout);
    while (!partitions.settled(ids, deferred_here) && lock.wait_until(changed, until)) {
    }
  }
  commit(true, &ids);
  {
    Lock lock(mutex);
    for (const auto& [id, running] : partitions.revoke(ids)) {
      spdlog::warn("revoked {}[{}] with {} record(s) still in flight; the next owner replays them", id.first, id.second,
                   running);
    }
    metrics->assigned.Set(static_cast<double>(partitions.size()));
  }
  spdlog::info("revoked {} partition(s)", parts->cnt);
  if (options.on_revoked) {
    try {
      options.on_revoked(std::vector<PartitionId>(ids.begin(), ids.end()));
    } catch (const std::exception& e) {
      spdlog::error("handing over revoked partitions' state failed: {}", e.what());
    }
  }
}

// librdkafka's side of the rebalance (assign, resume, unassign): rebalance.h.
void ConsumerRuntime::Impl::rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                         rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<Impl*>(opaque);
  serve_rebalance(rk, err, parts,
                  {[self](rd_kafka_topic_partition_list_t* p) { self->on_assign(p); },
                   [self](rd_kafka_topic_partition_list_t* p) { self->on_revoke(p); }});
}

void ConsumerRuntime::Impl::on_stats(const char* json, size_t len) {
  // A broker back UP ends "all brokers down" even when no record arrives (an idle service
  // would otherwise stay not ready until its next record).
  if (statistics->apply(std::string_view(json, len)) && brokers_down.load()) {
    brokers_down.store(false);
    mark_connected();
  }
}

int ConsumerRuntime::Impl::stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
  try {
    static_cast<Impl*>(opaque)->on_stats(json, len);
  } catch (const std::exception& e) {
    spdlog::warn("statistics: {}", e.what());
  }
  return 0;
}

void ConsumerRuntime::Impl::error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<Impl*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    self->kafka_ok.store(false);
    self->brokers_down.store(true);
    // Brokers that refuse the credentials are "down" too: the reason that helps stays.
    self->health->set_condition("kafka", false, self->auth_failure.empty() ? "all brokers down" : self->auth_failure);
  } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
    self->on_fatal_error();
    return;
  } else if (refused_credentials(err)) {
    // Retrying cannot fix credentials; the process stays up, not ready, and says why.
    self->kafka_ok.store(false);
    self->auth_failure = std::string("cannot authenticate: ") + reason;
    self->health->set_condition("kafka", false, self->auth_failure);
  }
  spdlog::warn("kafka: {}", reason);
}

void ConsumerRuntime::Impl::drain() {
  // Stop fetching: records not yet dispatched stay uncommitted for the next owner.
  for (auto& q : backlogs) q.erase_if([](const InboundRecord&) { return true; });
  std::vector<PartitionId> ids;
  {
    Lock lock(mutex);
    ids = partitions.ids();
  }
  pause_or_resume(ids, true);
  const auto deadline = Clock::now() + options.shutdown_grace;
  for (;;) {
    {
      Lock lock(mutex);
      if (in_flight.unfinished() == 0 || fatal.load()) break;
      const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(100));
      while (in_flight.unfinished() != 0 && lock.wait_until(changed, until)) {
      }
      if (in_flight.unfinished() == 0) break;
      if (Clock::now() >= deadline) {
        spdlog::warn("shutdown grace of {} ms over with {} record(s) in flight; they will be replayed",
                     options.shutdown_grace.count(), in_flight.unfinished());
        break;
      }
    }
    // Serve callbacks meanwhile (rebalances stay well-behaved); fetched records are dropped.
    MessagePtr msg(rd_kafka_consumer_poll(rk.get(), 0));
  }
  commit(true);
}

void ConsumerRuntime::Impl::on_fatal_error() {
  char reason[512];
  const rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk.get(), reason, sizeof reason);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || fatal.load() || fallback_to_classic) return;
  const bool unsupported =
      err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE || err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION;
  if (unsupported && protocol == GroupProtocol::kConsumer && options.group_protocol == GroupProtocol::kAuto &&
      !ever_assigned) {
    spdlog::warn(
        "the group coordinator does not support the consumer group protocol (KIP-848): {}; "
        "falling back to the classic protocol",
        reason);
    fallback_to_classic = true;
    return;
  }
  spdlog::error("consumer: fatal error: {}{}", reason,
                unsupported && protocol == GroupProtocol::kConsumer
                    ? " (the brokers do not support --group-protocol consumer; use classic or auto)"
                    : "");
  health->set_condition("kafka", false, std::string("fatal error: ") + reason);
  fatal.store(true);
}

void ConsumerRuntime::Impl::create_client(GroupProtocol p) {
  protocol = p;
  std::map<std::string, std::string> defaults{
      {"client.id", options.service},
      {"auto.offset.reset", "earliest"},
      // A resumed partition joins the next fetch request; a shorter long poll
      // bounds how late that is (the retry lead covers it). 10 idle fetches/s.
      {"fetch.wait.max.ms", "100"},
      {"statistics.interval.ms", std::to_string(options.statistics_interval.count())}};
  if (p == GroupProtocol::kClassic) {
    defaults["session.timeout.ms"] = std::to_string(options.session_timeout.count());
    defaults["heartbeat.interval.ms"] = std::to_string(std::max<long>(100, options.session_timeout.count() / 4));
  }
  // The consumer protocol refuses session.timeout.ms and heartbeat.interval.ms: the broker
  // sets them (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms).
  auto conf = make_conf(settings, defaults,
                        {{"group.id", options.group_id},
                         {"group.protocol", group_protocol_name(p)},
                         {"enable.auto.commit", "false"},
                         {"enable.auto.offset.store", "false"}});
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Impl::rebalance_cb);
  rd_kafka_conf_set_stats_cb(conf.get(), &Impl::stats_cb);
  rd_kafka_conf_set_error_cb(conf.get(), &Impl::error_cb);
  {
    char value[32];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf.get(), "fetch.wait.max.ms", value, &size) == RD_KAFKA_CONF_OK) {
      retry_gate.set_lead(RetryTierGate::lead_for(std::atoll(value)));
    }
  }
  rk.reset();  // a previous client (the fallback) is destroyed first: one member per process
  rk = make_client(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk.get());
  for (const char* name : {"consumer", "classic"}) {
    metrics->protocol.Add({{"protocol", name}}).Set(std::string_view(name) == group_protocol_name(p) ? 1 : 0);
  }
}

bool ConsumerRuntime::Impl::subscribe() {
  PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size())));
  for (const auto& t : options.topics)
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk.get(), topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::error("cannot subscribe: {}", rd_kafka_err2str(err));
    return false;
  }
  return true;
}

GroupProtocol parse_group_protocol(const std::string& name) {
  if (name == "auto") return GroupProtocol::kAuto;
  if (name == "consumer") return GroupProtocol::kConsumer;
  if (name == "classic") return GroupProtocol::kClassic;
  throw std::invalid_argument("group protocol must be auto, consumer or classic, not '" + name + "'");
}

const char* group_protocol_name(GroupProtocol protocol) {
  switch (protocol) {
    case GroupProtocol::kAuto:
      return "auto";
    case GroupProtocol::kConsumer:
      return "consumer";
    case GroupProtocol::kClassic:
      return "classic";
  }
  return "auto";
}

ConsumerRuntime::ConsumerRuntime(KafkaSettings settings, ConsumerOptions options, const TopicCatalog& catalog,
                                 std::shared_ptr<Producer> producer, std::shared_ptr<prometheus::Registry> registry,
                                 std::shared_ptr<observability::HealthState> health)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(options), catalog, std::move(producer),
                                   std::move(registry), std::move(health))) {
  impl_->health->set_condition("kafka", false, "not joined to the consumer group yet");
  GroupProtocol protocol = impl_->options.group_protocol;
  if (protocol != GroupProtocol::kClassic) {
    const auto answer = offers_consumer_protocol(impl_->settings, std::chrono::seconds(10));
    const auto offered = answer.offered;
    if (!answer.auth_error.empty()) {
      // Retrying cannot fix credentials; the process stays up, not ready, and says why.
      impl_->auth_failure = "cannot authenticate: " + answer.auth_error;
      impl_->health->set_condition("kafka", false, impl_->auth_failure);
    }
    if (offered == false && protocol == GroupProtocol::kConsumer) {
      throw KafkaError(
          "the brokers do not offer the consumer group protocol (KIP-848: Kafka 4.0 or later, "
          "group.coordinator.rebalance.protocols with consumer); use --group-protocol classic or auto");
    }
    if (!offered.has_value()) {
      spdlog::warn(
          "no broker said which group protocols it offers{}; using the consumer protocol "
          "(--group-protocol classic for brokers before Kafka 4)",
          answer.auth_error.empty() ? " within 10 s" : " (authentication failed)");
    } else if (!*offered) {
      spdlog::info("the brokers do not offer the consumer group protocol (KIP-848); using the classic protocol");
    }
    protocol = offered.value_or(true) ? GroupProtocol::kConsumer : GroupProtocol::kClassic;
  }
  impl_->create_client(protocol);
}

ConsumerRuntime::~ConsumerRuntime() = default;

void ConsumerRuntime::request_stop() { impl_->stop_requested.store(true, std::memory_order_relaxed); }

int ConsumerRuntime::run(const Handler& handler) {
  auto& impl = *impl_;
  impl.handler = &handler;
  if (!impl.subscribe()) return 1;
  spdlog::info("consuming {} topic(s) as group {} ({} group protocol) with up to {} record(s) in flight",
               impl.options.topics.size(), impl.options.group_id, group_protocol_name(impl.protocol),
               impl.options.max_in_flight);
  impl.start_workers();
  while (!impl.stop_requested.load(std::memory_order_relaxed) && !impl.fatal.load()) {
    impl.health->beat();
    if (impl.fallback_to_classic) {
      // Nothing was assigned yet, so nothing is in flight: the client is replaced whole.
      impl.fallback_to_classic = false;
      impl.create_client(GroupProtocol::kClassic);
      if (!impl.subscribe()) return 1;
      spdlog::info("consuming as group {} with the classic group protocol", impl.options.group_id);
    }
    impl.resume_due_partitions();
    impl.dispatch_backlog();
    impl.update_backpressure();
    // With records waiting locally, never block in poll: a worker may free up any moment, and
    // a blocking poll on paused partitions would leave it idle. Wait for a
    // worker instead, briefly, then serve librdkafka without blocking.
    const bool waiting = impl.backlog_waiting();
    if (waiting) {
      Lock lock(impl.mutex);
      const auto until = Clock::now() + std::chrono::milliseconds(5);
      while (!impl.in_flight.has_room() && lock.wait_until(impl.changed, until)) {
      }
    }
    // Then take what librdkafka has already fetched, up to the backlog's bound, so that flow
    // control sees the backlog and pauses low-priority partitions before their prefetched
    // records queue ahead of a critical one.
    if (impl.poll_once(waiting ? 0 : impl.ms_until_due())) {
      for (int i = 0; i < 1024 && impl.backlog_has_room() && impl.poll_once(0); ++i) {
      }
    }
    if (Clock::now() - impl.last_commit >= impl.options.commit_interval) {
      impl.commit(false);
      impl.last_commit = Clock::now();
    }
  }
  impl.health->set_condition("shutdown", false, "draining");
  spdlog::info(impl.fatal ? "stopping after a delivery failure" : "stop requested; draining in-flight work");
  impl.drain();
  {
    // Work still running after the grace period is abandoned: finishing later must not move
    // a commit past it, since this process may exit before its outputs are acknowledged.
    Lock lock(impl.mutex);
    impl.partitions.revoke_all();
  }
  rd_kafka_consumer_close(impl.rk.get());
  impl.stop_workers();
  spdlog::info("consumer closed");
  return impl.fatal ? 1 : 0;
}

}  // namespace agentline::kafka
