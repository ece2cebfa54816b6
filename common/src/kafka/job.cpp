#include "kafka/job.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "agentline/kafka/dead_letter.h"

namespace agentline::kafka::detail {

void JobEmitter::emit(OutgoingRecord record) {
  job_->pending.fetch_add(1, std::memory_order_relaxed);
  (*send_)(record, [job = job_, finished = finished_, topic = record.topic](const DeliveryReport& report) {
    if (!report.ok) {
      spdlog::error("could not deliver a record to {} for {}[{}]@{}: {}", topic, job->record.topic,
                    job->record.partition, job->record.offset, report.error);
      job->delivery_failed.store(true);
    }
    if (job->settle()) (*finished)(*job);
  });
}

namespace {

class JobHold final : public Emitter::Hold {
 public:
  JobHold(std::shared_ptr<Job> job, std::shared_ptr<const JobEmitter::Finished> finished)
      : job_(std::move(job)), finished_(std::move(finished)) {
    job_->pending.fetch_add(1, std::memory_order_relaxed);
  }
  ~JobHold() override {
    if (job_->settle()) (*finished_)(*job_);
  }
  void fail() override { job_->delivery_failed.store(true); }

 private:
  std::shared_ptr<Job> job_;
  std::shared_ptr<const JobEmitter::Finished> finished_;
};

}  // namespace

std::shared_ptr<Emitter::Hold> JobEmitter::hold() { return std::make_shared<JobHold>(job_, finished_); }

void JobEmitter::handler_returned() {
  if (job_->settle()) (*finished_)(*job_);
}

namespace {

Failure filesystem_failure(const std::filesystem::filesystem_error& e) {
  const auto code = e.code();
  for (auto input : {std::errc::filename_too_long, std::errc::invalid_argument, std::errc::illegal_byte_sequence,
                     std::errc::not_a_directory, std::errc::is_a_directory}) {
    if (code == input) return Failure::bad_input("unwritable_path", e.what());
  }
  return Failure::transient("unhandled_exception", e.what());
}

}  // namespace

std::optional<Failure> invoke_handler(const Handler& handler, const InboundRecord& record, Emitter& out,
                                      const std::vector<std::string>& observed_topics) {
  try {
    if (auto bomb = header_limit_violation(record); !bomb.empty()) {
      if (std::find(observed_topics.begin(), observed_topics.end(), record.topic) != observed_topics.end()) {
        return std::nullopt;
      }
      return Failure::bad_input("header_limit", std::move(bomb));
    }
    return handler(record, out);
  } catch (const std::filesystem::filesystem_error& e) {
    return filesystem_failure(e);
  } catch (const std::exception& e) {
    return Failure::transient("unhandled_exception", e.what());
  } catch (...) {
    return Failure::transient("unhandled_exception", "unknown exception");
  }
}

}  // namespace agentline::kafka::detail
