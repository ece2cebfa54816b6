#pragma once
// Tracks the records of one partition that are being processed, possibly out of order, and
// tells which offset may be committed: the end of the contiguous finished prefix.
// Offsets need not be contiguous (compaction, transaction markers). Not thread-safe; the
// consumer runtime guards it.
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace agentline::kafka {

class OffsetTracker {
 public:
  // A record at `offset` was handed to a handler, or taken in to be (the consumer runtime's fair
  // queuing dispatches out of order). Offsets must be added in increasing order.
  void start(std::int64_t offset);
  // Its handler finished and its outputs are acknowledged. Unknown offsets are ignored.
  void finish(std::int64_t offset);
  // The offset to commit (next record to read), if anything finished since construction.
  std::optional<std::int64_t> committable() const { return committable_; }
  std::size_t in_flight() const;
  // Finished records behind one still pending, in increasing order: what the commit cannot
  // cover yet (commit_metadata.h carries them to the next owner).
  std::vector<std::int64_t> finished_beyond() const;
  // The lowest offset started and not finished, if any.
  std::optional<std::int64_t> first_pending() const;
  // Started and not finished.
  bool pending(std::int64_t offset) const {
    auto it = pending_.find(offset);
    return it != pending_.end() && !it->second;
  }

 private:
  std::map<std::int64_t, bool> pending_;  // offset -> finished
  std::optional<std::int64_t> committable_;
};

}  // namespace agentline::kafka
