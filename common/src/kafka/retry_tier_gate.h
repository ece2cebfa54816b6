#pragma once
// The gate of a retry tier's partition: a record there carries its due time (the header
// agentline-retry-due) and must not run before it. The consumer runtime asks the gate what to
// do with the record at the head of a tier partition:
//   kRun      due now, and no record of the partition is waiting ahead of it;
//   kHold     due within the lead (or behind held records, whose order it keeps): wait in
//             memory and run at the due time;
//   kPause    due later: pause the partition at this record (seek back to it) and resume
//             `lead` before it is due, so the fetch lands in time and the record runs on time
//             from memory (with a 500 ms fetch wait and no lead, p99 lateness was ~500 ms).
// A decision without librdkafka or locks; the lead follows fetch.wait.max.ms.
#include <cstdint>

namespace agentline::kafka::detail {

class RetryTierGate {
 public:
  enum class Decision { kRun, kHold, kPause };

  // The lead covers a long poll of `fetch_wait_ms` behind other partitions (+150 ms), at least 250 ms.
  static std::int64_t lead_for(std::int64_t fetch_wait_ms);
  void set_lead(std::int64_t lead_ms) { lead_ms_ = lead_ms; }
  std::int64_t lead() const { return lead_ms_; }

  Decision decide(std::int64_t due_ms, std::int64_t now_ms, bool behind_held) const;
  // When a partition paused for a record due at `due_ms` resumes.
  std::int64_t resume_at(std::int64_t due_ms) const { return due_ms - lead_ms_; }

 private:
  std::int64_t lead_ms_ = 250;
};

}  // namespace agentline::kafka::detail
