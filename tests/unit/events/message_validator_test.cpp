#include "agentline/events/message_validator.h"
#include "agentline/events/plan_task.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using agentline::events::MessageValidator;
using nlohmann::json;

namespace {
json valid_task() {
  return json::parse(R"({
    "id": "msg-1", "task_id": "t-1", "job_id": "job-1", "type": "DEV_TASK",
    "created_at": "2026-11-22T10:00:00Z",
    "payload": {"path": "src/app.py", "description": "Write the app"}})");
}
}  // namespace

TEST(MessageValidator, AcceptsAValidTask) {
  MessageValidator v;
  EXPECT_FALSE(v.validate_task(valid_task()).has_value());
}

TEST(MessageValidator, MalformedJsonIsBadInput) {
  json out;
  for (const char* text : {"{", "[1,2]", "\"str\"", "{\"a\": \"\xff\"}"}) {
    auto f = MessageValidator::parse(text, out);
    ASSERT_TRUE(f.has_value()) << text;
    EXPECT_EQ(f->error_class, "malformed_json");
    EXPECT_EQ(f->kind, agentline::kafka::FailureKind::kBadInput);
  }
}

TEST(MessageValidator, SchemaViolationsNameTheField) {
  MessageValidator v;
  struct Row {
    std::function<void(json&)> mutate;
    const char* where;
  } rows[] = {
      {[](json& t) { t.erase("task_id"); }, "task_id"},
      {[](json& t) { t["payload"].erase("path"); }, "path"},
      {[](json& t) { t["payload"]["path"] = 42; }, "path"},
      {[](json& t) { t["type"] = "DEPLOY"; }, "type"},
      {[](json& t) { t["created_at"] = "yesterday"; }, "created_at"},
      {[](json& t) { t["payload"]["priority"] = "urgent"; }, "priority"},
      {[](json& t) { t["task_id"] = "has spaces"; }, "task_id"},
  };
  for (const auto& row : rows) {
    json t = valid_task();
    row.mutate(t);
    auto f = v.validate_task(t);
    ASSERT_TRUE(f.has_value()) << t.dump();
    EXPECT_EQ(f->error_class, "schema_violation");
    EXPECT_NE(f->message.find(row.where), std::string::npos) << f->message;
  }
}

TEST(MessageValidator, UnsafePathIsItsOwnClass) {
  MessageValidator v;
  json t = valid_task();
  t["payload"]["path"] = "../../etc/passwd";
  auto f = v.validate_task(t);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->error_class, "unsafe_path");
  EXPECT_NE(f->message.find("../../etc/passwd"), std::string::npos);
}

TEST(MessageValidator, IdsThatNameAFolderAndSegmentsFilesystemsRefuseAreBadInput) {
  MessageValidator v;
  for (const char* id : {".", ".."}) {
    json t = valid_task();
    t["job_id"] = id;
    auto f = v.validate_task(t);
    ASSERT_TRUE(f.has_value()) << id;
    EXPECT_EQ(f->error_class, "unsafe_id");
    json e = {{"id", "e1"},
              {"task_id", id},
              {"job_id", "j"},
              {"type", "UPLOADED"},
              {"created_at", "2026-11-22T10:00:00Z"},
              {"payload", {{"path", "a.py"}, {"target", "filesystem"}, {"remote_id", "r"}}}};
    f = v.validate_event(e);
    ASSERT_TRUE(f.has_value()) << id;
    EXPECT_EQ(f->error_class, "unsafe_id") << f->message;
  }
  json t = valid_task();
  t["payload"]["path"] = "src/" + std::string(300, 'x') + ".py";
  auto f = v.validate_task(t);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->error_class, "unsafe_path") << "refused at the door, not met as ENAMETOOLONG in a check";
}

TEST(MessageValidator, EventsAreCheckedAgainstTheSchemaOfTheirType) {
  MessageValidator v;
  json e = json::parse(R"({
    "id": "ev-1", "task_id": "t-1", "job_id": "job-1", "type": "QA_FAILED",
    "created_at": "2026-11-22T10:00:00.123+01:00",
    "payload": {"path": "src/app.py", "diagnostics": [{"message": "E501 line too long", "line": 3}]}})");
  EXPECT_FALSE(v.validate_event(e).has_value());
  EXPECT_EQ(v.event_schema_id("QA_FAILED"), "agentline.event.qa_failed.v1");

  e["payload"].erase("diagnostics");
  auto missing = v.validate_event(e);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->error_class, "schema_violation");

  e["type"] = "FILE_EXPLODED";
  auto unknown = v.validate_event(e);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->error_class, "unknown_event_type");
}

TEST(MessageValidator, AnEnvelopeIsReadInAnyOrderWithItsUsage) {
  MessageValidator v;
  agentline::events::EventEnvelope e;
  // Payload first, an escaped id, a review with its own usage, fields the envelope skips.
  const std::string text = R"({"payload": {"content": "x = \"1\"\n", "review": {"verdict": "pass", "prompt_tokens": 7,
    "completion_tokens": 3, "cost_usd": 0.5}, "prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.25,
    "fix_attempt": 2, "path": "src/app.py", "nested": {"path": "not/this.py"}},
    "created_at": "2026-11-22T10:00:00Z", "id": "ev\u002d1", "type": "QA_PASSED", "job_id": "job-1", "task_id": "t-1"})";
  ASSERT_FALSE(v.read_envelope(text, e).has_value());
  EXPECT_EQ(e.id, "ev-1");
  EXPECT_EQ(e.type, "QA_PASSED");
  EXPECT_EQ(e.job_id, "job-1");
  EXPECT_EQ(e.task_id, "t-1");
  EXPECT_EQ(e.path, "src/app.py");
  EXPECT_EQ(e.fix_attempt, 2);
  EXPECT_TRUE(e.reviewed);
  EXPECT_EQ(e.usage.prompt_tokens, 100);
  EXPECT_EQ(e.usage.completion_tokens, 20);
  EXPECT_EQ(e.usage.cost_usd, 0.25);
  EXPECT_EQ(e.review_usage.prompt_tokens, 7);
  EXPECT_EQ(e.review_usage.cost_usd, 0.5);
  // A repeated payload counts as in the full parse: the last one.
  ASSERT_FALSE(v.read_envelope(R"({"id": "e1", "type": "UPLOADED", "job_id": "j", "task_id": "t",
    "payload": {"path": "first.py", "fix_attempt": 1}, "payload": {"path": "last.py"}})",
                               e)
                   .has_value());
  EXPECT_EQ(e.path, "last.py");
  EXPECT_EQ(e.fix_attempt, 0);
  // The same reader on the next event starts from nothing.
  ASSERT_FALSE(v.read_envelope(R"({"id": "e2", "type": "UPLOADED", "job_id": "j", "task_id": "t", "payload": {}})", e)
                   .has_value());
  EXPECT_EQ(e.path, "");
  EXPECT_FALSE(e.reviewed);
  EXPECT_EQ(e.usage.prompt_tokens, 0);
}

// What the router refuses from the envelope alone gets the class the full check gives it.
TEST(MessageValidator, AnEnvelopeIsRefusedWithTheClassesOfTheFullCheck) {
  MessageValidator v;
  const std::string ok_payload = R"("payload": {"path": "a.py", "content": "x"})";
  const std::string at = R"("created_at": "2026-11-22T10:00:00Z", )";
  const std::string ids = R"("id": "e1", "task_id": "t1", "job_id": "j1", )" + at.substr(0, at.size() - 2);
  // 1,009 characters in 2,009 bytes: within the schema's 1,024 characters, over the path
  // policy's 1,024 bytes.
  std::string wide_path;
  for (int segment = 0; segment < 10; ++segment) {
    if (segment > 0) wide_path += "/";
    for (int i = 0; i < 100; ++i) wide_path += "\u00e9";
  }
  struct Row {
    std::string text;
    const char* error_class;
  } rows[] = {
      {"{", "malformed_json"},
      {"[]", "malformed_json"},
      {"\"a string\"", "malformed_json"},
      {"\x00\x01\x02", "malformed_json"},
      {"{\"a\": \"\xff\"}", "malformed_json"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", )" + ok_payload + R"(}{"b": 2})", "malformed_json"},
      {R"({"type": 5})", "schema_violation"},
      {"{" + ids + ", " + ok_payload + "}", "schema_violation"},
      {"{" + ids + R"(, "type": "TASK_EXPLODED", )" + ok_payload + "}", "unknown_event_type"},
      {"{" + ids + R"(, "type": "qa_passed", )" + ok_payload + "}", "unknown_event_type"},
      {R"({"id": "ev-1", "type": "TASK_EXPLODED", "task_id": "pt-1", "job_id": "poison"})", "unknown_event_type"},
      {R"({"id": "ev-1", "type": "FILE_COMPLETED", "task_id": "pt-1", "job_id": "poison"})", "schema_violation"},
      {R"({"id": "e 1", "task_id": "t1", "job_id": "j1", "type": "FILE_COMPLETED", )" + at + ok_payload + "}",
       "schema_violation"},
      {R"({"id": "e1", "task_id": 7, "job_id": "j1", "type": "FILE_COMPLETED", )" + at + ok_payload + "}",
       "schema_violation"},
      {R"({"id": "e1", "task_id": "t1", "job_id": "..", "type": "FILE_COMPLETED", )" + at + ok_payload + "}",
       "unsafe_id"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", "payload": "a.py"})", "schema_violation"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", "payload": {"path": 42, "content": "x"}})", "schema_violation"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", "payload": {"path": "a.py", "content": "x", "fix_attempt": -1}})",
       "schema_violation"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", "payload": {"path": "../../etc/passwd", "content": "x"}})",
       "unsafe_path"},
      {"{" + ids + R"(, "type": "FILE_COMPLETED", "payload": {"path": ")" + wide_path + R"(", "content": "x"}})",
       "unsafe_path"},
  };
  for (const auto& row : rows) {
    agentline::events::EventEnvelope e;
    const auto refused = v.read_envelope(row.text, e);
    ASSERT_TRUE(refused.has_value()) << row.text;
    EXPECT_EQ(refused->error_class, row.error_class) << row.text << ": " << refused->message;
    json whole;
    auto full = MessageValidator::parse(row.text, whole);
    if (!full) full = v.validate_event(whole);
    ASSERT_TRUE(full.has_value()) << row.text;
    EXPECT_EQ(full->error_class, row.error_class) << row.text << ": " << full->message;
  }
}

// The rest of an event is the business of the service that reads it: the envelope passes, the
// full check (qa-worker's and outbox-uploader's on their input) does not.
TEST(MessageValidator, AnEnvelopeLeavesTheRestOfTheEventToItsReader) {
  MessageValidator v;
  const std::string text =
      R"({"id": "e1", "task_id": "t1", "job_id": "j1", "type": "FILE_COMPLETED", "payload": {"path": "a.py"}})";
  agentline::events::EventEnvelope e;
  EXPECT_FALSE(v.read_envelope(text, e).has_value());
  auto full = v.validate_event(json::parse(text));
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->error_class, "schema_violation");
}

TEST(MessageValidator, EveryDesignEventTypeHasASchema) {
  MessageValidator v;
  for (const char* type :
       {"FILE_COMPLETED", "FILE_FAILED", "QA_PASSED", "QA_FAILED", "UPLOADED", "UPLOAD_FAILED", "ESCALATED"}) {
    EXPECT_FALSE(v.event_schema_id(type).empty()) << type;
  }
}

TEST(MessageValidator, AGoalIsAPlanTaskWithItsOwnSchema) {
  MessageValidator v;
  json plan =
      agentline::events::make_plan_task("job-1", "a calculator", {{"language", "python"}, {"max_files", 5}}, "acme");
  EXPECT_FALSE(v.validate_task(plan).has_value());
  EXPECT_EQ(plan["task_id"], "job-1:plan");
  plan["payload"]["constraints"]["max_files"] = 0;
  auto f = v.validate_task(plan);
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("max_files"), std::string::npos) << f->message;
  json no_goal = agentline::events::make_plan_task("job-1", "g", nullptr, "");
  no_goal["payload"].erase("goal");
  EXPECT_TRUE(v.validate_task(no_goal));
  // A replan names its file, which passes the path policy like any task's.
  json replan = no_goal;
  replan["type"] = "REPLAN_TASK";
  replan["payload"] = {{"goal", "g"}, {"path", "../x.py"}, {"description", "d"}, {"content", ""}};
  ASSERT_TRUE(v.validate_task(replan));
  EXPECT_EQ(v.validate_task(replan)->error_class, "unsafe_path");
  replan["payload"].erase("path");
  EXPECT_TRUE(v.validate_task(replan));
  // A DEV_TASK still needs its file.
  json dev = valid_task();
  dev["payload"].erase("path");
  EXPECT_TRUE(v.validate_task(dev));
}
