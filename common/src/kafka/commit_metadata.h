#pragma once
// The records a member finished beyond its committed offset, carried in the offset commit's
// metadata so that the partition's next owner does not run them again.
//
// A commit can only name the end of a partition's finished prefix, and records finish out of
// order: a record held back (a backoff, a tenant's key waiting its turn under fair queuing)
// keeps the commit behind it while later records finish. Without more, a graceful stop or a
// rebalance hands those finished records to the next owner, which runs them again (the graceful
// shutdown test saw 18 of 1,500 tasks generated twice). Kafka's OffsetCommit carries a metadata
// string per partition (offset.metadata.max.bytes, 4,096 by default); the finished offsets
// travel there, as ranges relative to the committed offset:
//
//   agentline-done:1:3-5,10        committed 100: 103, 104, 105 and 110 are finished
//
// Ranges that do not fit in `max_bytes` are left out, lowest first kept: their records run
// again (at least once, as without the metadata). Metadata in any other form (another client's)
// reads as nothing finished.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace agentline::kafka::detail {

// `finished`: offsets above `committed`, in increasing order.
std::string encode_finished(std::int64_t committed, const std::vector<std::int64_t>& finished,
                            std::size_t max_bytes = 3000);
std::set<std::int64_t> decode_finished(std::int64_t committed, std::string_view metadata);

}  // namespace agentline::kafka::detail
