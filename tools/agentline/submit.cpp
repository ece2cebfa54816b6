#include "submit.h"

#include <atomic>
#include <istream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/producer.h"

namespace agentline::cli {

std::string new_traceparent() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[64];
  std::snprintf(buf, sizeof buf, "00-%016llx%016llx-%016llx-01", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()));
  return buf;
}

SubmitResult submit_tasks(std::istream& in, kafka::Producer& producer, const std::string& topic, bool raw,
                          std::ostream& report, const std::function<void()>& hold_back, int hold_back_every) {
  events::MessageValidator validator;
  SubmitResult result;
  std::atomic<int> failed{0};
  std::mutex report_mutex;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (hold_back && (result.submitted + result.rejected) % hold_back_every == 0) hold_back();
    kafka::OutgoingRecord record;
    record.topic = topic;
    record.value = line;
    if (!raw) {
      nlohmann::json task;
      auto failure = events::MessageValidator::parse(line, task);
      if (!failure) failure = validator.validate_task(task);
      if (failure) {
        report << "line " << line_no << ": rejected: " << failure->error_class << ": "
               << kafka::bounded_message(failure->message, 400) << "\n";
        ++result.rejected;
        continue;
      }
      record.key = task["task_id"].get<std::string>();
      result.jobs.insert(task["job_id"].get<std::string>());
      record.value = task.dump();
    }
    record.headers = {{std::string(kafka::headers::kContentType), "application/json"},
                      {std::string(kafka::headers::kSchema), std::string(events::kTaskSchemaId)},
                      {std::string(kafka::headers::kTraceparent), new_traceparent()}};
    producer.send(record, [&, line_no](const kafka::DeliveryReport& r) {
      if (r.ok) return;
      ++failed;
      std::lock_guard lock(report_mutex);
      report << "line " << line_no << ": not acknowledged by Kafka: " << r.error << "\n";
    });
    ++result.submitted;
  }
  // Every callback above refers to this frame: wait for all of them (delivery.timeout.ms bounds it).
  while (!producer.flush(std::chrono::seconds(10))) {
  }
  result.failed = failed.load();
  result.submitted -= result.failed;
  return result;
}

}  // namespace agentline::cli
