#pragma once
// How a handler reports the fate of one record. Failures are classified where they arise:
//  - kBadInput: the record itself is wrong (malformed JSON, schema violation, unsafe path).
//    Retrying cannot help; it goes straight to the DLQ.
//  - kTransient: a dependency failed (timeout, 5xx, broker hiccup). It goes through the
//    retry tiers, then to the DLQ.
//  - kBackoff: a dependency is known to be unavailable for now (its circuit breaker is open,
//    its rate limit says wait). Not the record's fault: no retry tier is used, nothing goes to
//    the DLQ. The runtime stops dispatching and fetching for `retry_after`, then runs the same
//    record again. A handler returning kBackoff must not have emitted anything.
//  - kHoldKey: a kBackoff for this record's fair-queuing key only (ConsumerOptions::fair): what
//    is exhausted is its tenant's own (a tenant's tokens per day). The record goes back to the
//    head of its key's queue, the key waits `retry_after`, the other keys go on. Without fair
//    queuing it is a kBackoff. Nothing emitted, as for kBackoff.
#include <chrono>
#include <string>
#include <utility>

namespace agentline::kafka {

enum class FailureKind { kBadInput, kTransient, kBackoff, kHoldKey };

struct Failure {
  FailureKind kind = FailureKind::kTransient;
  std::string error_class;                   // short, stable, low-cardinality: "schema_violation", "timeout"
  std::string message;                       // human-readable detail, bounded when written to headers
  std::chrono::milliseconds retry_after{0};  // kBackoff only

  static Failure bad_input(std::string error_class, std::string message) {
    return {FailureKind::kBadInput, std::move(error_class), std::move(message)};
  }
  static Failure transient(std::string error_class, std::string message) {
    return {FailureKind::kTransient, std::move(error_class), std::move(message)};
  }
  static Failure backoff(std::string error_class, std::string message, std::chrono::milliseconds retry_after) {
    return {FailureKind::kBackoff, std::move(error_class), std::move(message), retry_after};
  }
  static Failure hold_key(std::string error_class, std::string message, std::chrono::milliseconds retry_after) {
    return {FailureKind::kHoldKey, std::move(error_class), std::move(message), retry_after};
  }
};

}  // namespace agentline::kafka
