#pragma once
// Flow control of the consumer runtime, per partition: the decision, without librdkafka (the
// runtime pauses and resumes what it says). A partition of priority rank r (0: highest) is
// paused while
//   - consumption is held (a handler asked to back off: breaker open, rate limit) and records are
//     not fair-queued (with fair queuing the runtime keeps fetching into the bounded local queue
//     during a hold, so every tenant's waiting task has its turn when it ends), or
//   - a higher rank has records waiting (priority: no more low-priority work is fetched while
//     high-priority work queues), or
//   - the records waiting locally at rank r or higher reach the backlog bound, or their bytes
//     (keys, values, headers) reach the byte bound (backpressure: memory stays bounded whatever
//     the partition count and the records' size), or, for a retry tier, the records held for
//     their due time reach their own bound;
// and resumes when none of these holds and the backlog is down to half the bound in records and
// in bytes (hysteresis: every resume costs a fetch round trip). Between the two it keeps its
// state.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace agentline::kafka::detail {

class FlowControl {
 public:
  // `backlog_bound`: records waiting locally that pause a partition (16 x max_in_flight);
  // `byte_bound`: their bytes that do (ConsumerOptions::read_ahead_bytes).
  explicit FlowControl(std::size_t backlog_bound, std::size_t byte_bound = SIZE_MAX);

  // The records waiting at each rank (and their bytes, by rank too; empty: not counted), and
  // those held for their due time, as the poll loop sees them now; `holding`: a backoff holds
  // consumption.
  void observe(const std::vector<std::size_t>& waiting_by_rank, std::size_t held, bool holding,
               const std::vector<std::size_t>& bytes_by_rank = {});
  // Whether a partition of `rank` (`retry_tier`: a retry tier's) should be paused now, given
  // whether it is.
  bool should_pause(bool paused, std::size_t rank, bool retry_tier) const;

  std::size_t backlog_bound() const { return high_; }
  std::size_t byte_bound() const { return bytes_high_; }
  std::size_t held_bound() const { return held_high_; }

 private:
  std::size_t high_;
  // Held retry records wait for their due time, not for a worker: they do not pause other
  // partitions (that would also make librdkafka drop the tier's prefetched records and fetch
  // them again late). They have their own, generous bound; the lead keeps them few.
  std::size_t held_high_;
  std::size_t bytes_high_;
  std::vector<std::size_t> at_or_above_;        // records waiting at this rank or a higher one
  std::vector<std::size_t> bytes_at_or_above_;  // their bytes
  std::size_t held_ = 0;
  bool holding_ = false;
};

// How long the poll loop may block in librdkafka's poll, in ms (0 to 100): until the first of
// the next record that may start (`next_start`: a held retry record's due time, a fair-queued
// key's release) and the next paused retry tier to resume (`next_resume`); INT64_MAX: none. While
// a backoff holds consumption (until `hold_until`) nothing starts before it ends, so a record
// already due waits for the hold's end: it made the loop poll without blocking for the whole hold
// (dev-fix-worker spent a core for the 30 s each LLM outage held it).
int poll_wait_ms(std::int64_t next_start, std::int64_t next_resume, std::int64_t hold_until, std::int64_t now);

}  // namespace agentline::kafka::detail
