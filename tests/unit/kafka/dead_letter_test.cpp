#include "agentline/kafka/dead_letter.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace agentline::kafka;
namespace h = agentline::kafka::headers;

namespace {

FailureRouter make_router() {
  return FailureRouter(
      "priority-assigner", "priority-assigner",
      {{"agentline.retry.pa.1", 1, 2000ms}, {"agentline.retry.pa.2", 2, 4000ms}, {"agentline.retry.pa.3", 3, 8000ms}},
      "agentline.dlq");
}

InboundRecord source_record() {
  InboundRecord r;
  r.topic = "agentline.tasks.submitted";
  r.partition = 4;
  r.offset = 1234;
  r.timestamp_ms = 1700000000000;
  r.key = "task-1";
  r.value = R"({"x":1})";
  r.headers = {{"traceparent", "00-abc-def-01"}, {"content-type", "application/json"}};
  return r;
}

std::string header(const OutgoingRecord& r, std::string_view key) {
  auto v = find_header(r.headers, key);
  return v ? std::string(*v) : "<missing>";
}

}  // namespace

TEST(FailureRouter, BadInputGoesStraightToTheDlqWithEveryDocumentedHeader) {
  auto out = make_router().route(source_record(), Failure::bad_input("schema_violation", "payload.path: missing"),
                                 1700000005000);
  EXPECT_EQ(out.topic, "agentline.dlq");
  EXPECT_EQ(out.key, "task-1");
  EXPECT_EQ(out.value, R"({"x":1})");
  EXPECT_EQ(header(out, h::kOriginalTopic), "agentline.tasks.submitted");
  EXPECT_EQ(header(out, h::kOriginalPartition), "4");
  EXPECT_EQ(header(out, h::kOriginalOffset), "1234");
  EXPECT_EQ(header(out, h::kOriginalTimestamp), "1700000000000");
  EXPECT_EQ(header(out, h::kConsumerGroup), "priority-assigner");
  EXPECT_EQ(header(out, h::kFailedService), "priority-assigner");
  EXPECT_EQ(header(out, h::kErrorClass), "schema_violation");
  EXPECT_EQ(header(out, h::kErrorMessage), "payload.path: missing");
  EXPECT_EQ(header(out, h::kAttempt), "1");
  EXPECT_EQ(header(out, h::kDeadLetteredAt), "1700000005000");
  EXPECT_EQ(header(out, h::kTraceparent), "00-abc-def-01") << "the trace context travels with the record";
}

TEST(FailureRouter, TransientFailuresWalkTheTiersThenReachTheDlq) {
  auto router = make_router();
  InboundRecord rec = source_record();
  const std::int64_t now = 1700000000000;
  const char* expected_topics[] = {"agentline.retry.pa.1", "agentline.retry.pa.2", "agentline.retry.pa.3",
                                   "agentline.dlq"};
  const std::int64_t expected_delay[] = {2000, 4000, 8000};
  for (int step = 0; step < 4; ++step) {
    auto out = router.route(rec, Failure::transient("timeout", "backend timed out"), now);
    ASSERT_EQ(out.topic, expected_topics[step]) << "step " << step;
    EXPECT_EQ(header(out, h::kAttempt), std::to_string(step + 1));
    // The origin is the first topic, never a retry tier, so a replay goes to the right place.
    EXPECT_EQ(header(out, h::kOriginalTopic), "agentline.tasks.submitted");
    EXPECT_EQ(header(out, h::kOriginalOffset), "1234");
    if (step < 3) {
      EXPECT_EQ(header(out, h::kRetryDue), std::to_string(now + expected_delay[step] + 1));
    }
    // The next hop reads what this one wrote.
    InboundRecord next;
    next.topic = out.topic;
    next.partition = 0;
    next.offset = 50 + step;
    next.key = out.key;
    next.value = out.value;
    next.headers = out.headers;
    EXPECT_EQ(attempt_of(next), step + 1);
    rec = next;
  }
}

TEST(FailureRouter, HeadersStayBoundedWhateverTheInput) {
  InboundRecord rec = source_record();
  for (int i = 0; i < 1000; ++i) rec.headers.push_back({"bomb-" + std::to_string(i), std::string(1000, 'x')});
  auto out = make_router().route(rec, Failure::bad_input("malformed_json", std::string(100000, 'e')), 1);
  std::size_t total = 0;
  for (const auto& hd : out.headers) total += hd.key.size() + hd.value.size();
  EXPECT_LE(total, h::kMaxCopiedHeaderBytes + 2048);
  EXPECT_LE(header(out, h::kErrorMessage).size(), h::kMaxErrorMessageBytes);
  EXPECT_EQ(header(out, h::kErrorClass), "malformed_json");
}

TEST(FailureRouter, AValueNearTheBrokerLimitIsCutInTheDlqRecordAndMarked) {
  auto in = source_record();
  in.value = std::string(1000 * 1000 - 100, 'x');
  auto out = make_router().route(in, Failure::bad_input("schema_violation", "too long"), 1700000005000);
  EXPECT_EQ(out.topic, "agentline.dlq");
  EXPECT_EQ(out.value.size(), h::kMaxDeadLetterValueBytes);
  EXPECT_EQ(header(out, h::kValueTruncated), std::to_string(in.value.size()));

  auto small = make_router().route(source_record(), Failure::bad_input("schema_violation", "x"), 1700000005000);
  EXPECT_EQ(small.value, source_record().value);
  EXPECT_EQ(header(small, h::kValueTruncated), "<missing>");
}

TEST(HeaderLimits, TooManyHeadersOrTooManyHeaderBytesAreNamed) {
  auto r = source_record();
  EXPECT_EQ(header_limit_violation(r), "");
  r.headers.assign(h::kMaxInboundHeaders, Header{"k", "v"});
  EXPECT_EQ(header_limit_violation(r), "");
  r.headers.push_back({"k", "v"});
  EXPECT_EQ(header_limit_violation(r), "65 headers (at most 64 are accepted)");
  r.headers = {{"big", std::string(h::kMaxInboundHeaderBytes, 'x')}};
  EXPECT_EQ(header_limit_violation(r), "65539 bytes of headers (at most 65536 are accepted)");
}

TEST(BoundedMessage, CutsOnCharacterBoundariesAndScrubsControlAndInvalidBytes) {
  EXPECT_EQ(bounded_message("short", 100), "short");
  EXPECT_EQ(bounded_message("line1\nline2", 100), "line1 line2");
  EXPECT_EQ(bounded_message("bad\xff\xfe byte", 100), "bad?? byte");
  std::string euros;
  for (int i = 0; i < 100; ++i) euros += "\xe2\x82\xac";  // 3-byte euro signs
  std::string cut = bounded_message(euros, 20);
  EXPECT_LE(cut.size(), 20u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ((cut.size() - 3) % 3, 0u) << "no euro sign is split";
}
