#pragma once
// One inbound record in the consumer runtime from dispatch until its handler returned and every
// record produced for it is acknowledged, and the handler's call: what a handler's exception means.
// `pending` counts the handler itself plus each unacknowledged output; whoever brings it to zero
// (the worker when the handler returns, or the delivery callback of the last output) finishes the
// record: its offset may be committed, or, when an output failed, must not be.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/failure.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/record.h"

namespace agentline::kafka::detail {

struct PartitionState;

struct Job {
  InboundRecord record;
  std::shared_ptr<PartitionState> partition;
  std::atomic<int> pending{1};
  std::atomic<bool> delivery_failed{false};

  // The handler returned or one output was acknowledged (or failed): true when that was the
  // last thing the record waited for.
  bool settle() { return pending.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  // The handler asked to back off: the record will run again from the start.
  void reset() { pending.store(1); }
};

// The Emitter a handler writes to: each record is sent with `send` and counted in the job until
// its delivery report; a failed delivery marks the job. `finished` runs once, on whichever thread
// settles the job last (a worker or the producer's delivery thread).
class JobEmitter final : public Emitter {
 public:
  using Send = std::function<void(const OutgoingRecord&, DeliveryCallback)>;
  using Finished = std::function<void(Job&)>;

  // `send` and `finished` are made once per runtime and shared by every job.
  JobEmitter(std::shared_ptr<Job> job, std::shared_ptr<const Send> send, std::shared_ptr<const Finished> finished)
      : job_(std::move(job)), send_(std::move(send)), finished_(std::move(finished)) {}
  void emit(OutgoingRecord record) override;
  // Counted in `pending` like an output until dropped.
  std::shared_ptr<Hold> hold() override;
  // The handler returned (its own count in `pending`).
  void handler_returned();

 private:
  std::shared_ptr<Job> job_;
  std::shared_ptr<const Send> send_;
  std::shared_ptr<const Finished> finished_;
};

// Runs `handler` for `record`: a record over the header limits is bad input without calling it
// (unless its topic is only observed, then it is skipped as done); an exception is a Failure —
// a filesystem error naming a path the filesystem refuses is bad input (the record's path), any
// other exception is transient.
std::optional<Failure> invoke_handler(const Handler& handler, const InboundRecord& record, Emitter& out,
                                      const std::vector<std::string>& observed_topics);

}  // namespace agentline::kafka::detail
