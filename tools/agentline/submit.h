#pragma once
// `agentline submit`: reads tasks as JSON Lines, validates each line like the
// priority-assigner would, reports the rejected lines with their reasons, and produces the
// valid ones to tasks.submitted (key task_id), waiting for Kafka's acknowledgement.
#include <functional>
#include <iosfwd>
#include <set>
#include <string>

namespace agentline::kafka {
class Producer;
}

namespace agentline::cli {

struct SubmitResult {
  int submitted = 0;
  int rejected = 0;
  int failed = 0;              // valid, but Kafka did not acknowledge them
  std::set<std::string> jobs;  // job ids of the validated tasks
};

// `raw`: send every non-blank line as it is, unvalidated (to exercise the DLQ path).
// `hold_back` runs before every `hold_back_every` records; it may block (backpressure).
SubmitResult submit_tasks(std::istream& in, kafka::Producer& producer, const std::string& topic, bool raw,
                          std::ostream& report, const std::function<void()>& hold_back = {},
                          int hold_back_every = 1000);

// A fresh W3C trace context ("00-<trace-id>-<span-id>-01").
std::string new_traceparent();

}  // namespace agentline::cli
