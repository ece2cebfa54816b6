#pragma once
// Job progress, coalesced (#23): every step of a file changes its job's summary and the file's
// record on the compacted jobs.progress topic, and a reader needs only the latest of each key.
// Records handed in wait up to one interval; then the latest per key is produced, and the others
// are never sent. Each step's input keeps its offset uncommitted (Emitter::hold) until the record
// that carries its step, or a later one of the same key, is acknowledged, so a crash replays the
// step as before. A tombstone is coalesced like any record, so it is never overtaken by an older
// value of its key; records go out in the order their keys first came. A record may be handed in
// with a `render` that makes its value when it is produced, from the state of its key then: a
// replaced record is then never serialized. Thread-safe.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/producer.h"
#include "agentline/service/periodic_task.h"

namespace prometheus {
class Registry;
class Counter;
}  // namespace prometheus

namespace agentline::router {

class CoalescingPublisher {
 public:
  CoalescingPublisher(const kafka::KafkaSettings& settings, std::chrono::milliseconds interval,
                      prometheus::Registry& registry);
  ~CoalescingPublisher();  // produces what waits, and waits for the acknowledgements (30 s at most)
  CoalescingPublisher(const CoalescingPublisher&) = delete;
  CoalescingPublisher& operator=(const CoalescingPublisher&) = delete;

  // The value of a record, made when it is produced; nullopt when its key's state is gone (a
  // tombstone of the key follows): nothing is produced and the holds are dropped.
  using Render = std::function<std::optional<std::string>()>;

  // Takes `record` in place of a waiting one of the same topic and key; `hold` (may be null) is
  // dropped once the record produced for that key is acknowledged. With `render`, the record's
  // value is render()'s at flush (called without this publisher's lock).
  void publish(kafka::OutgoingRecord record, std::shared_ptr<kafka::Emitter::Hold> hold, Render render = {});
  // Produces what waits now. Returns how many records.
  std::size_t flush();

 private:
  struct Waiting {
    kafka::OutgoingRecord record;
    Render render;
    std::vector<std::shared_ptr<kafka::Emitter::Hold>> holds;
  };

  std::mutex mu_;
  // In the order their keys first came in this interval (a job's tombstones stay files first).
  std::vector<Waiting> waiting_;
  std::unordered_map<std::string, std::size_t> index_;  // topic '\n' key -> its place in waiting_
  kafka::Producer producer_;
  prometheus::Counter* produced_;
  prometheus::Counter* replaced_;
  service::PeriodicTask task_;
};

}  // namespace agentline::router
