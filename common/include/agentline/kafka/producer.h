#pragma once
// An idempotent producer (enable.idempotence=true, acks=all) shared by a process.
// Thread-safe. Delivery reports reach the caller's callback on the producer's own poll
// thread; callbacks must be quick and must not throw. The destructor flushes.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/record.h"

namespace agentline::kafka {

struct DeliveryReport {
  bool ok = false;
  std::string error;  // empty when ok
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};
using DeliveryCallback = std::function<void(const DeliveryReport&)>;

class Producer {
 public:
  explicit Producer(const KafkaSettings& settings, std::string client_id = "agentline");
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues a record. The callback runs exactly once with the broker's verdict (or a local
  // error such as an unknown topic). Blocks while the local queue is full.
  void send(const OutgoingRecord& record, DeliveryCallback on_delivery);
  // Sends and waits for the broker's acknowledgement.
  DeliveryReport send_and_wait(const OutgoingRecord& record);
  // Waits until every queued record is acknowledged or failed; false on timeout.
  bool flush(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentline::kafka
