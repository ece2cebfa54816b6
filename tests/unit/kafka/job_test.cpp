// A record's life in the consumer runtime: finished only when its handler returned and every
// output was acknowledged; a failed delivery marks it; a handler's exception is a Failure
// (common/src/kafka/job.h).
#include "kafka/job.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <vector>

namespace agentline::kafka::detail {
namespace {

struct Sent {
  OutgoingRecord record;
  DeliveryCallback done;
};

struct Harness {
  std::vector<Sent> sent;
  int finished = 0;
  bool failed_at_finish = false;
  std::shared_ptr<Job> job = std::make_shared<Job>();
  JobEmitter emitter{job, std::make_shared<const JobEmitter::Send>([this](const OutgoingRecord& r, DeliveryCallback d) {
                       sent.push_back({r, std::move(d)});
                     }),
                     std::make_shared<const JobEmitter::Finished>([this](Job& j) {
                       ++finished;
                       failed_at_finish = j.delivery_failed.load();
                     })};
};

TEST(Job, FinishesOnlyWhenTheHandlerReturnedAndEveryOutputIsAcknowledged) {
  Harness h;
  h.emitter.emit(OutgoingRecord{"events", "k", "1", {}});
  h.emitter.emit(OutgoingRecord{"events", "k", "2", {}});
  h.sent[0].done(DeliveryReport{true, "", 0, 1});
  EXPECT_EQ(h.finished, 0) << "one output still unacknowledged, and the handler runs";
  h.emitter.handler_returned();
  EXPECT_EQ(h.finished, 0) << "one output still unacknowledged";
  h.sent[1].done(DeliveryReport{true, "", 0, 2});
  EXPECT_EQ(h.finished, 1);
  EXPECT_FALSE(h.failed_at_finish);
}

TEST(Job, AFailedDeliveryMarksTheJobAndAHandlerWithoutOutputsFinishesAtOnce) {
  Harness h;
  h.emitter.emit(OutgoingRecord{"events", "k", "1", {}});
  h.emitter.handler_returned();
  h.sent[0].done(DeliveryReport{false, "Local: Message timed out", -1, -1});
  EXPECT_EQ(h.finished, 1);
  EXPECT_TRUE(h.failed_at_finish) << "the runtime must not commit its offset";

  Harness quiet;
  quiet.emitter.handler_returned();
  EXPECT_EQ(quiet.finished, 1);
  EXPECT_TRUE(quiet.sent.empty());
}

TEST(Job, AHandlersExceptionIsAFailureAndOversizedHeadersAreBadInputUnlessOnlyObserved) {
  Harness h;
  InboundRecord record;
  record.topic = "tasks.normal";
  auto throwing = [](auto exception) {
    return Handler([exception](const InboundRecord&, Emitter&) -> std::optional<Failure> { throw exception; });
  };
  auto failure = invoke_handler(throwing(std::runtime_error("boom")), record, h.emitter, {});
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind, FailureKind::kTransient);
  EXPECT_EQ(failure->message, "boom");

  failure = invoke_handler(
      throwing(std::filesystem::filesystem_error("cannot write", std::make_error_code(std::errc::filename_too_long))),
      record, h.emitter, {});
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind, FailureKind::kBadInput) << "the record's path is too long: retrying cannot help";
  EXPECT_EQ(failure->error_class, "unwritable_path");

  failure = invoke_handler(
      throwing(std::filesystem::filesystem_error("disk full", std::make_error_code(std::errc::no_space_on_device))),
      record, h.emitter, {});
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind, FailureKind::kTransient) << "a full disk may pass";

  int calls = 0;
  Handler counting = [&](const InboundRecord&, Emitter&) -> std::optional<Failure> {
    ++calls;
    return std::nullopt;
  };
  for (int i = 0; i < 200; ++i) record.headers.push_back({"h" + std::to_string(i), std::string(1024, 'x')});
  failure = invoke_handler(counting, record, h.emitter, {});
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind, FailureKind::kBadInput);
  EXPECT_EQ(failure->error_class, "header_limit");
  EXPECT_FALSE(invoke_handler(counting, record, h.emitter, {"tasks.normal"})) << "an observed topic skips it";
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace agentline::kafka::detail
