#pragma once
// qa-worker: takes FILE_COMPLETED events from qa.requests, runs the checks for the file's type
// in the sandbox, and emits QA_PASSED or QA_FAILED (with structured diagnostics) to events.
// The output event carries the input's payload forward (content, description, fix_attempt,
// tenant, priority), so the router can build the fix task. A file without a check for its type
// passes with a note; warnings travel on a passed file. It also takes JOB_CHECK_REQUESTED (a
// job's files, assembled as they will be delivered) and runs the job checks for the extensions
// present in a sandbox of its own limits: JOB_QA_PASSED or JOB_QA_FAILED, whose diagnostics name
// the job's files. A sandbox that cannot start is not the file's fault: a backoff (nothing is
// retried or dead-lettered; the worker is also not ready). Thread-safe.
#include <optional>
#include <string>

#include "agentline/events/message_validator.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/topic_catalog.h"
#include "checks.h"
#include "sandbox.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace agentline::qa {

class QaWorker {
 public:
  QaWorker(const kafka::TopicCatalog& catalog, CheckTable checks, CheckTable job_checks, Sandbox sandbox,
           Sandbox job_sandbox, prometheus::Registry& registry);
  std::optional<kafka::Failure> handle(const kafka::InboundRecord& record, kafka::Emitter& out);
  // Why the sandbox cannot run checks (empty when it can).
  void set_sandbox_problem(std::string problem) { sandbox_problem_ = std::move(problem); }

 private:
  std::optional<kafka::Failure> handle_file(const nlohmann::json& event, const kafka::InboundRecord& record,
                                            kafka::Emitter& out);
  std::optional<kafka::Failure> handle_job(const nlohmann::json& event, const kafka::InboundRecord& record,
                                           kafka::Emitter& out);
  // Validates `result` and emits it to the events topic, keyed by its job.
  std::optional<kafka::Failure> emit(const nlohmann::json& result, const kafka::InboundRecord& record,
                                     kafka::Emitter& out);

  events::MessageValidator validator_;
  CheckTable checks_;
  CheckTable job_checks_;
  Sandbox sandbox_;
  Sandbox job_sandbox_;
  std::string events_topic_;
  std::string sandbox_problem_;
  prometheus::Family<prometheus::Counter>* checks_total_;
  prometheus::Family<prometheus::Counter>* limit_kills_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Counter>* job_checks_total_;
  prometheus::Family<prometheus::Histogram>* job_duration_;
};

}  // namespace agentline::qa
