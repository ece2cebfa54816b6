#pragma once
// Reads a whole topic as a table: every partition from the beginning up to the end seen at
// start (catch_up), then every later record (follow), on a thread of its own. No consumer
// group and no commits: each process keeps its own full view. Used for compacted topics
// (cache.results, jobs.progress).
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/record.h"

namespace agentline::kafka {

class TopicFollower {
 public:
  using Callback = std::function<void(const InboundRecord&)>;

  TopicFollower(KafkaSettings settings, std::string topic, std::string client_id);
  ~TopicFollower();  // stop()
  TopicFollower(const TopicFollower&) = delete;
  TopicFollower& operator=(const TopicFollower&) = delete;

  // Calls `on_record` for every record up to the end offsets seen now; returns how many.
  // Throws std::runtime_error if the topic cannot be read within `timeout`.
  std::size_t catch_up(const Callback& on_record, std::chrono::milliseconds timeout);
  // From where catch_up stopped (or from the end), calls `on_record` on a background thread
  // for each new record until stop(). Exceptions from the callback are logged and counted.
  void follow(Callback on_record);
  void stop();
  const std::string& topic() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::kafka
