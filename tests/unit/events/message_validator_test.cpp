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
