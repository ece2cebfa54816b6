#pragma once
// `dlq-escalator replay`: sends stored DLQ records back to their original topic (or --to),
// with their original key and value, at a bounded rate. Each copy carries
// agentline-replay-count; a record whose task was already replayed `max_replays` times (by
// that header or by the store's own count for the task) is refused, so a record that fails
// every time cannot circle forever. Replayed records are marked in the store after Kafka
// acknowledges the copy; a second run does not replay them again (unless include_replayed).
#include <functional>
#include <ostream>
#include <string>

#include "dlq_store.h"

namespace agentline::kafka {
class Producer;
}

namespace agentline::dlq {

struct ReplayOptions {
  Filter filter;
  std::string to_topic;  // empty: each record's original topic
  bool dry_run = false;
  double rate_per_second = 50;  // 0: unlimited
  int max_replays = 3;
};

struct ReplayReport {
  int selected = 0;
  int replayed = 0;  // sent (or, in a dry run, would be)
  int refused_loop_guard = 0;
  int no_target = 0;  // no header names an original topic and no --to was given
  int failed = 0;     // Kafka did not acknowledge the copy
};

// `producer` may be null for a dry run. Writes one line per record to `log`.
ReplayReport replay(DlqStore& store, kafka::Producer* producer, const ReplayOptions& options, std::ostream& log);

}  // namespace agentline::dlq
