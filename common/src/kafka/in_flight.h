#pragma once
// The consumer runtime's count of records past dispatch: handlers running (at most
// max_in_flight), and records whose handler returned but whose outputs Kafka has not
// acknowledged yet. Only the first limits handler concurrency: waiting for acknowledgements does
// not hold a worker, so throughput is not capped at max_in_flight / ack latency. The second is
// bounded too, by count (kAwaitingPerSlot per slot) and by the bytes of the inputs held
// (kAwaitingBytes), so memory stays bounded when the broker is slow; the count per slot is high
// because throughput is at most (slots x kAwaitingPerSlot) / ack latency. Not thread-safe:
// the runtime's mutex guards it.
#include <cstddef>

namespace agentline::kafka::detail {

class InFlight {
 public:
  static constexpr int kAwaitingPerSlot = 256;
  static constexpr std::size_t kAwaitingBytes = 64u << 20;

  explicit InFlight(int max_in_flight);

  // Room for one more dispatch.
  bool has_room() const;
  // Handlers running at most, for now: at least 1 and at most max_in_flight (an adaptive
  // concurrency limit moves it; max_in_flight until set).
  void set_limit(int limit);
  int limit() const { return limit_; }
  void dispatched() { ++running_; }
  // Dispatched but never started (the workers stopped): not running any more.
  void dropped(int records) { running_ -= records; }
  // The handler asked to back off: the record waits outside, neither running nor awaiting.
  void deferred() { --running_; }
  // The handler returned: its slot is free, its input is held until the outputs are acknowledged.
  void handler_returned(std::size_t input_bytes);
  void acknowledged(std::size_t input_bytes);

  int running() const { return running_; }
  int awaiting() const { return awaiting_; }
  std::size_t awaiting_bytes() const { return awaiting_bytes_; }
  // Running or awaiting: agentline_consumer_in_flight.
  int unfinished() const { return running_ + awaiting_; }

 private:
  int max_running_;
  int limit_;
  int max_awaiting_;
  int running_ = 0;
  int awaiting_ = 0;
  std::size_t awaiting_bytes_ = 0;
};

}  // namespace agentline::kafka::detail
