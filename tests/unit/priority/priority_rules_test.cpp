#include "priority_rules.h"

#include <gtest/gtest.h>

using namespace agentline::priority;

// The seed's table: CRITICAL for entry points, config, __init__, core; HIGH for models,
// schemas, database, auth; NORMAL for services, APIs, routes; LOW for tests, docs, examples.
TEST(PriorityRules, DefaultRulesFollowTheSeedTable) {
  auto rules = PriorityRules::load("");
  struct Row {
    const char* path;
    Priority expected;
  } rows[] = {
      {"main.py", Priority::kCritical},
      {"src/app.ts", Priority::kCritical},
      {"cmd/server/main.go", Priority::kCritical},
      {"pkg/__init__.py", Priority::kCritical},
      {"config/settings.yaml", Priority::kCritical},
      {"app/config.py", Priority::kCritical},
      {"core/engine.py", Priority::kCritical},
      {"pyproject.toml", Priority::kCritical},
      {"app/models/user.py", Priority::kHigh},
      {"app/models.py", Priority::kHigh},
      {"api/schemas/order.py", Priority::kHigh},
      {"db/session.py", Priority::kHigh},
      {"app/database.py", Priority::kHigh},
      {"auth/jwt.py", Priority::kHigh},
      {"app/services/billing.py", Priority::kNormal},
      {"app/api/v1/users.py", Priority::kNormal},
      {"app/routes.py", Priority::kNormal},
      {"app/utils/strings.py", Priority::kNormal},
      {"tests/test_models.py", Priority::kLow},
      {"app/models/user_test.go", Priority::kLow},
      {"web/src/Button.test.tsx", Priority::kLow},
      {"docs/architecture.md", Priority::kLow},
      {"README.md", Priority::kLow},
      {"examples/quickstart.py", Priority::kLow},
  };
  for (const auto& row : rows) {
    EXPECT_EQ(to_string(rules.classify(row.path, "").priority), to_string(row.expected)) << row.path;
  }
}

TEST(PriorityRules, MatchingIsCaseInsensitiveAndNamesTheRule) {
  auto rules = PriorityRules::load("");
  auto d = rules.classify("App/Models/User.PY", "");
  EXPECT_EQ(d.priority, Priority::kHigh);
  EXPECT_EQ(d.rule, "models-schemas-database-auth");
  EXPECT_EQ(rules.classify("misc/thing.py", "").rule, "default");
}

TEST(PriorityRules, CustomRuleFileWithKeywordsAndDefault) {
  auto rules = PriorityRules::parse(R"({
    "default": "low",
    "rules": [
      {"name": "security", "priority": "critical", "keywords": ["cve", "security"]},
      {"name": "ui", "priority": "high", "directories": ["ui"]}
    ]})");
  EXPECT_EQ(rules.classify("lib/x.c", "Patch CVE-2024-1234").priority, Priority::kCritical);
  EXPECT_EQ(rules.classify("ui/button.tsx", "").priority, Priority::kHigh);
  EXPECT_EQ(rules.classify("lib/x.c", "refactor").priority, Priority::kLow);
}

TEST(PriorityRules, BadRuleFilesAreRejected) {
  EXPECT_THROW(PriorityRules::parse("{"), std::invalid_argument);
  EXPECT_THROW(PriorityRules::parse(R"({"rules": [{"name": "x", "priority": "urgent", "keywords": ["a"]}]})"),
               std::invalid_argument);
  EXPECT_THROW(PriorityRules::parse(R"({"rules": [{"name": "x", "priority": "low"}]})"), std::invalid_argument);
  EXPECT_THROW(PriorityRules::parse(R"({"rules": [], "defualt": "low"})"), std::invalid_argument);
}

TEST(PriorityRules, FilesOthersWaitOnGoAheadOfTheirRule) {
  struct Row {
    Priority rule;
    int dependants;
    Priority expected;
    const char* name;
  } rows[] = {
      {Priority::kLow, 0, Priority::kLow, "docs"},
      {Priority::kLow, 1, Priority::kNormal, "docs+critical_path"},
      {Priority::kLow, 2, Priority::kNormal, "docs+critical_path"},
      {Priority::kLow, 3, Priority::kHigh, "docs+critical_path"},
      {Priority::kNormal, 7, Priority::kCritical, "docs+critical_path"},
      {Priority::kHigh, 1, Priority::kCritical, "docs+critical_path"},
      {Priority::kCritical, 9, Priority::kCritical, "docs"},
  };
  for (const auto& r : rows) {
    const auto d = raise_for_dependants({r.rule, "docs"}, r.dependants);
    EXPECT_EQ(d.priority, r.expected) << r.dependants;
    EXPECT_EQ(d.rule, r.name) << r.dependants;
  }
}

#include <prometheus/registry.h>

#include "agentline/kafka/topic_catalog.h"
#include "priority_assigner.h"

namespace {
struct Sink : agentline::kafka::Emitter {
  std::vector<agentline::kafka::OutgoingRecord> records;
  void emit(agentline::kafka::OutgoingRecord r) override { records.push_back(std::move(r)); }
};
}  // namespace

// A REVIEW_TASK is the router's: submitted from outside it would pass a file without its checks.
TEST(PriorityAssigner, RefusesAReviewTaskFromOutside) {
  prometheus::Registry registry;
  const auto catalog = agentline::kafka::TopicCatalog::load("");
  PriorityAssigner assigner(catalog, PriorityRules::load(""), registry);
  agentline::kafka::InboundRecord r;
  r.topic = catalog.topic("tasks.submitted");
  r.value =
      R"json({"id": "r1", "task_id": "t1", "job_id": "j", "type": "REVIEW_TASK", "created_at": "2026-12-02T10:00:00Z",
               "payload": {"path": "a.py", "description": "x", "content": "evil()", "reviewers": ["security"]}})json";
  Sink out;
  const auto failure = assigner.handle(r, out);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->error_class, "internal_task_type");
  EXPECT_TRUE(out.records.empty());
}
