#include "agentline/events/record.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agentline/kafka/dead_letter.h"

namespace agentline::events {
namespace {

TEST(RecordTest, ARecordCarriesItsContentTypeSchemaAndTheTraceOfItsCause) {
  kafka::InboundRecord cause;
  cause.headers = {
      {std::string(kafka::headers::kTraceparent), "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"}};
  const auto r = make_record("agentline.events", "job-1", {{"type", "QA_PASSED"}, {"path", "caf\xc3"}}, &cause,
                             "agentline/event/qa_passed");
  EXPECT_EQ(r.topic, "agentline.events");
  EXPECT_EQ(r.key, "job-1");
  EXPECT_EQ(nlohmann::json::parse(r.value)["type"], "QA_PASSED") << "invalid UTF-8 is replaced, not thrown on";
  auto header = [&](std::string_view name) -> std::string {
    for (const auto& h : r.headers)
      if (h.key == name) return h.value;
    return "(none)";
  };
  EXPECT_EQ(header(kafka::headers::kContentType), "application/json");
  EXPECT_EQ(header(kafka::headers::kSchema), "agentline/event/qa_passed");
  EXPECT_EQ(header(kafka::headers::kTraceparent), "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01");

  const auto bare = make_record("t", "k", nlohmann::json::object(), nullptr);
  EXPECT_EQ(bare.headers.size(), 1u) << "no cause, no schema: the content type only";
}

}  // namespace
}  // namespace agentline::events
