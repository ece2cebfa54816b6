#pragma once
// The partitions this member owns and what the consumer runtime keeps per partition, as the
// rebalance callbacks change them. An assigned partition starts with a fresh state (offsets
// tracked anew, ranked by its topic's priority). A revoked one leaves the table and its state is
// marked revoked: records of it still running finish without moving a commit, and its records
// held for their due time are dropped (the next owner reads them again). Not thread-safe: the
// runtime's mutex guards it.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agentline/kafka/offset_tracker.h"
#include "agentline/kafka/record.h"

namespace agentline::kafka::detail {

using PartitionId = std::pair<std::string, std::int32_t>;

struct PartitionState {
  OffsetTracker tracker;
  std::int64_t last_started = -1;
  std::int64_t last_committed = -1;
  std::string last_metadata;  // what the last commit carried (commit_metadata.h)
  // Offsets beyond the committed one that the previous owner finished (commit_metadata.h): they
  // are taken as done when fetched, never run again.
  std::set<std::int64_t> finished_before;
  bool revoked = false;
  bool retry_paused = false;  // a retry-tier partition waiting for its head record
  std::int64_t due_ms = 0;    // when to resume it: the head record's due time minus the lead
  // Retry-tier records fetched ahead of their due time (within the lead), in offset order;
  // dispatched as each comes due. Poll thread only.
  std::deque<InboundRecord> held;
  bool flow_paused = false;  // paused for backpressure or for higher-priority work
  int rank = 0;              // 0 = highest priority
};

class PartitionTable {
 public:
  using Map = std::map<PartitionId, std::shared_ptr<PartitionState>>;

  // Fresh states for `ids`, ranked by `rank_of(topic)`.
  void assign(const std::vector<PartitionId>& ids, const std::function<int(const std::string&)>& rank_of);
  // Whether no partition of `ids` has more records running than `parked` says are only waiting
  // (deferred by a backoff): a revocation may commit and let them go.
  bool settled(const std::set<PartitionId>& ids, const std::map<PartitionId, std::size_t>& parked) const;
  // Takes `ids` out, each marked revoked with its held records dropped. Returns the partitions
  // that still had records running, with how many (the next owner replays them).
  std::vector<std::pair<PartitionId, std::size_t>> revoke(const std::set<PartitionId>& ids);
  // Marks every partition revoked and keeps them (shutdown: work still running after the grace
  // period must not move a commit).
  void revoke_all();

  std::shared_ptr<PartitionState> find(const PartitionId& id) const;  // null when not ours
  std::vector<PartitionId> ids() const;
  std::size_t size() const { return states_.size(); }
  Map::iterator begin() { return states_.begin(); }
  Map::iterator end() { return states_.end(); }
  Map::const_iterator begin() const { return states_.begin(); }
  Map::const_iterator end() const { return states_.end(); }

 private:
  Map states_;
};

}  // namespace agentline::kafka::detail
