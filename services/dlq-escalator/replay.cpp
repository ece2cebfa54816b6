#include "replay.h"

#include <chrono>
#include <thread>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/producer.h"

namespace agentline::dlq {

ReplayReport replay(DlqStore& store, kafka::Producer* producer, const ReplayOptions& options, std::ostream& log) {
  ReplayReport report;
  const auto records = store.query(options.filter);
  report.selected = static_cast<int>(records.size());
  const auto interval = options.rate_per_second > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(1.0 / options.rate_per_second))
                                                    : std::chrono::steady_clock::duration::zero();
  auto next_send = std::chrono::steady_clock::now();
  for (const auto& r : records) {
    const std::string what = "#" + std::to_string(r.id) + " " +
                             (r.info.task_id.empty() ? "(no task id)" : r.info.task_id) + " [" + r.info.error_class +
                             "]";
    const std::string target = options.to_topic.empty() ? r.info.original_topic : options.to_topic;
    if (target.empty()) {
      ++report.no_target;
      log << "skip   " << what << ": no header names its original topic; give --to\n";
      continue;
    }
    const int before = std::max(r.info.replay_count, store.task_replays(r.info.task_id, r.info.original_topic));
    if (before >= options.max_replays) {
      ++report.refused_loop_guard;
      log << "refuse " << what << ": already replayed " << before << " time(s) (--max-replays " << options.max_replays
          << ")\n";
      continue;
    }
    if (options.dry_run) {
      ++report.replayed;
      log << "would  " << what << " -> " << target << " (replay " << before + 1 << ")\n";
      continue;
    }
    std::this_thread::sleep_until(next_send);
    next_send = std::max(next_send + interval, std::chrono::steady_clock::now() - interval);
    kafka::OutgoingRecord copy;
    copy.topic = target;
    copy.key = r.key.value_or("");
    copy.value = r.value;
    copy.headers =
        replay_headers(r.headers, before + 1,
                       r.dlq_topic + "/" + std::to_string(r.dlq_partition) + "/" + std::to_string(r.dlq_offset));
    const auto ack = producer->send_and_wait(copy);
    if (!ack.ok) {
      ++report.failed;
      log << "FAILED " << what << " -> " << target << ": " << ack.error << "\n";
      continue;
    }
    store.mark_replayed(r.id, target, events::now_ms());
    ++report.replayed;
    log << "sent   " << what << " -> " << target << " (replay " << before + 1 << ")\n";
  }
  return report;
}

}  // namespace agentline::dlq
