#pragma once
// How a handler reports the fate of one record. Failures are classified where they arise:
//  - kBadInput: the record itself is wrong (malformed JSON, schema violation, unsafe path).
//    Retrying cannot help; it goes straight to the DLQ.
//  - kTransient: a dependency failed (timeout, 5xx, broker hiccup). It goes through the
//    retry tiers, then to the DLQ.
#include <string>
#include <utility>

namespace agentline::kafka {

enum class FailureKind { kBadInput, kTransient };

struct Failure {
  FailureKind kind = FailureKind::kTransient;
  std::string error_class;  // short, stable, low-cardinality: "schema_violation", "timeout"
  std::string message;      // human-readable detail, bounded when written to headers

  static Failure bad_input(std::string error_class, std::string message) {
    return {FailureKind::kBadInput, std::move(error_class), std::move(message)};
  }
  static Failure transient(std::string error_class, std::string message) {
    return {FailureKind::kTransient, std::move(error_class), std::move(message)};
  }
};

}  // namespace agentline::kafka
