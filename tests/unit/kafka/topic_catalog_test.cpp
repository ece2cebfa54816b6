#include "agentline/kafka/topic_catalog.h"

#include <gtest/gtest.h>

#include <set>

using namespace std::chrono_literals;
using agentline::kafka::TopicCatalog;

TEST(TopicCatalog, BuiltInCatalogHoldsEveryTopicOfTheDesign) {
  auto c = TopicCatalog::load("");
  EXPECT_EQ(c.prefix(), "agentline.");
  for (const char* t : {"tasks.submitted", "tasks.critical", "tasks.high", "tasks.normal", "tasks.low", "tasks.fix",
                        "events", "qa.requests", "deploy.requests", "dlq", "escalations", "jobs.progress"}) {
    EXPECT_EQ(c.topic(t), std::string("agentline.") + t);
  }
  EXPECT_EQ(c.dlq_topic(), "agentline.dlq");
  EXPECT_THROW(c.topic("no.such.topic"), std::out_of_range);
}

TEST(TopicCatalog, CompactedTopicsCarryTheirConfig) {
  auto c = TopicCatalog::load("");
  int compacted = 0;
  for (const auto& t : c.all_topics()) {
    if (t.name == "agentline.jobs.progress" || t.name == "agentline.cache.results" ||
        t.name == "agentline.jobs.plans") {
      EXPECT_EQ(t.configs.at("cleanup.policy"), "compact") << t.name;
      ++compacted;
    }
  }
  EXPECT_EQ(compacted, 3);
}

TEST(TopicCatalog, RetryTiersArePerGroupWithTheDefaultTwoFourEightSeconds) {
  auto c = TopicCatalog::load("");
  auto tiers = c.retry_tiers("priority-assigner");
  ASSERT_EQ(tiers.size(), 3u);
  EXPECT_EQ(tiers[0].topic, "agentline.retry.priority-assigner.1");
  EXPECT_EQ(tiers[0].delay, 2000ms);
  EXPECT_EQ(tiers[1].delay, 4000ms);
  EXPECT_EQ(tiers[2].topic, "agentline.retry.priority-assigner.3");
  EXPECT_EQ(tiers[2].delay, 8000ms);
  EXPECT_EQ(tiers[2].attempt, 3);
  EXPECT_TRUE(c.retry_tiers("unknown-group").empty());

  std::set<std::string> names;
  for (const auto& t : c.all_topics()) names.insert(t.name);
  EXPECT_EQ(names.size(), c.all_topics().size()) << "no duplicate topic names";
  EXPECT_TRUE(names.count("agentline.retry.outbox-uploader.2"));
}

TEST(TopicCatalog, PrefixOverrideRenamesEverything) {
  auto c = TopicCatalog::load("");
  c.set_prefix("team-a.");
  EXPECT_EQ(c.topic("tasks.fix"), "team-a.tasks.fix");
  EXPECT_EQ(c.retry_tiers("router")[0].topic, "team-a.retry.router.1");
  for (const auto& t : c.all_topics()) EXPECT_EQ(t.name.rfind("team-a.", 0), 0u) << t.name;
}

TEST(TopicCatalog, RejectsBrokenCatalogsWithAReason) {
  struct Row {
    const char* json;
    const char* reason_part;
  } rows[] = {
      {"not json", "not valid JSON"},
      {R"({"topics": []})", "non-empty"},
      {R"({"topics": [{"name": "a", "partitions": 0}], "dlq": "a"})", "partitions"},
      {R"({"topics": [{"name": "a b"}], "dlq": "a b"})", "invalid topic name"},
      {R"({"topics": [{"name": "a"}, {"name": "a"}], "dlq": "a"})", "duplicate"},
      {R"({"topics": [{"name": "a"}], "dlq": "b"})", "dlq"},
      {R"({"topics": [{"name": "a", "partitons": 3}], "dlq": "a"})", "unknown key 'partitons'"},
      {R"({"topics": [{"name": "a"}], "dlq": "a", "retry": {"delays_ms": [-1]}})", "non-negative"},
      // Found by fuzz_topic_catalog: a float too large for an int was undefined behaviour.
      {R"({"topics": [{"name": "a", "partitions": 1e300}], "dlq": "a"})", "partitions must be an integer"},
      {R"({"topics": [{"name": "a", "partitions": 2.5}], "dlq": "a"})", "partitions must be an integer"},
      {R"({"replication_factor": 99999999999, "topics": [{"name": "a"}], "dlq": "a"})", "replication_factor"},
      {R"({"topics": [{"name": "a"}], "dlq": "a", "retry": {"delays_ms": [], "partitions": -3}})", "retry.partitions"},
  };
  for (const auto& row : rows) {
    try {
      TopicCatalog::parse(row.json);
      ADD_FAILURE() << "accepted: " << row.json;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(row.reason_part), std::string::npos) << e.what();
    }
  }
}
