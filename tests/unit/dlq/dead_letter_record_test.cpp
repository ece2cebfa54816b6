#include "dead_letter_record.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "dlq_store.h"
#include "escalator.h"

namespace agentline::dlq {
namespace {

kafka::InboundRecord record(kafka::Headers headers, std::string value = "{}", std::string key = "k") {
  kafka::InboundRecord r;
  r.topic = "agentline.dlq";
  r.partition = 1;
  r.offset = 7;
  r.timestamp_ms = 1700000000000;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  return r;
}

TEST(DeadLetterRecordTest, ReadsAgentlineHeadersAndIdsFromTheValue) {
  auto d = describe(record({{"agentline-original-topic", "agentline.tasks.submitted"},
                            {"agentline-original-partition", "4"},
                            {"agentline-original-offset", "1234"},
                            {"agentline-error-class", "schema_violation"},
                            {"agentline-error-message", "[payload]: Missing required property 'path'."},
                            {"agentline-failed-service", "priority-assigner"},
                            {"agentline-dead-lettered-at", "1700000000500"},
                            {"agentline-replay-count", "2"}},
                           R"({"task_id": "t-1", "job_id": "j-1"})"));
  EXPECT_EQ(d.dialect, "agentline");
  EXPECT_EQ(d.original_topic, "agentline.tasks.submitted");
  EXPECT_EQ(d.original_partition, 4);
  EXPECT_EQ(d.original_offset, 1234);
  EXPECT_EQ(d.error_class, "schema_violation");
  EXPECT_EQ(d.failed_service, "priority-assigner");
  EXPECT_EQ(d.task_id, "t-1");
  EXPECT_EQ(d.job_id, "j-1");
  EXPECT_EQ(d.replay_count, 2);
  EXPECT_EQ(d.dead_lettered_ms, 1700000000500);
}

TEST(DeadLetterRecordTest, ReadsSpringBinaryNumbersAndConnectStrings) {
  auto spring = describe(record({{"kafka_dlt-original-topic", "orders"},
                                 {"kafka_dlt-original-partition", std::string("\0\0\0\3", 4)},
                                 {"kafka_dlt-original-offset", std::string("\0\0\0\0\0\x01\0\0", 8)},
                                 {"kafka_dlt-exception-fqcn", "org.example.BadOrderException"},
                                 {"kafka_dlt-exception-message", "no such sku"}},
                                "not json", "order-1"));
  EXPECT_EQ(spring.dialect, "spring");
  EXPECT_EQ(spring.original_topic, "orders");
  EXPECT_EQ(spring.original_partition, 3);
  EXPECT_EQ(spring.original_offset, 65536);
  EXPECT_EQ(spring.error_class, "BadOrderException");
  EXPECT_EQ(spring.error_message, "no such sku");
  EXPECT_EQ(spring.task_id, "order-1") << "the key stands in for the task id";
  EXPECT_EQ(spring.dead_lettered_ms, 1700000000000) << "the record's timestamp when no header says";

  auto connect =
      describe(record({{"__connect.errors.topic", "db.rows"},
                       {"__connect.errors.partition", "2"},
                       {"__connect.errors.offset", "99"},
                       {"__connect.errors.connector.name", "jdbc-sink"},
                       {"__connect.errors.exception.class.name", "org.apache.kafka.connect.errors.DataException"}}));
  EXPECT_EQ(connect.dialect, "connect");
  EXPECT_EQ(connect.original_partition, 2);
  EXPECT_EQ(connect.original_offset, 99);
  EXPECT_EQ(connect.error_class, "DataException");
  EXPECT_EQ(connect.failed_service, "jdbc-sink");

  auto unknown = describe(record({{"x", "y"}}, "{\"job_id\": \"../etc\"}", "has space"));
  EXPECT_EQ(unknown.dialect, "unknown");
  EXPECT_EQ(unknown.error_class, "unknown");
  EXPECT_EQ(unknown.job_id, "") << "an id that is not an id is dropped";
  EXPECT_EQ(unknown.task_id, "");
}

TEST(DeadLetterRecordTest, ErrorClassesStayLowCardinalityLabels) {
  EXPECT_EQ(label_safe("schema_violation"), "schema_violation");
  EXPECT_EQ(label_safe("a b{c}\"d"), "a_b_c__d");
  EXPECT_EQ(label_safe(std::string(500, 'x')).size(), 64u);
  EXPECT_EQ(label_safe(""), "unknown");
}

TEST(DeadLetterRecordTest, AReplayedCopyDropsEveryDialectsBookkeepingAndCountsTheReplay) {
  auto headers = replay_headers({{"traceparent", "00-abc-def-01"},
                                 {"agentline-schema", "agentline.task.v1"},
                                 {"agentline-error-class", "unsafe_path"},
                                 {"agentline-attempt", "3"},
                                 {"agentline-replay-count", "1"},
                                 {"kafka_dlt-original-topic", "orders"},
                                 {"__connect.errors.topic", "rows"}},
                                2, "agentline.dlq/0/5");
  std::map<std::string, std::string> m;
  for (const auto& h : headers) m[h.key] = h.value;
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(m["traceparent"], "00-abc-def-01");
  EXPECT_EQ(m["agentline-schema"], "agentline.task.v1");
  EXPECT_EQ(m["agentline-replay-count"], "2");
  EXPECT_EQ(m["agentline-replayed-from"], "agentline.dlq/0/5");
}

TEST(DlqStoreTest, StoresOncePerPositionFiltersAndCountsReplaysPerTask) {
  namespace fs = std::filesystem;
  const auto path = fs::temp_directory_path() / ("dlq-store-" + std::to_string(::getpid()) + ".db");
  fs::remove(path);
  {
    DlqStore store(path.string());
    auto a = record({{"agentline-original-topic", "agentline.events"},
                     {"agentline-error-class", "qa_failed_max"},
                     {"agentline-dead-lettered-at", "1000"},
                     {"bin", std::string("\xff\x00\x01", 3)}},
                    R"({"task_id": "t-1", "job_id": "j"})");
    EXPECT_TRUE(store.store(a, describe(a), 5));
    EXPECT_FALSE(store.store(a, describe(a), 6)) << "a redelivery is stored once";
    auto b = a;
    b.offset = 8;
    b.headers[2].value = "2000";
    EXPECT_TRUE(store.store(b, describe(b), 7));
    Filter f;
    EXPECT_EQ(store.query(f).size(), 2u);
    f.since_ms = 1500;
    EXPECT_EQ(store.query(f).size(), 1u);
    f = {};
    f.original_topic = "events";  // the logical name matches the prefixed one
    EXPECT_EQ(store.query(f).size(), 2u);
    f.reason = "unsafe_path";
    EXPECT_TRUE(store.query(f).empty());
    // Binary header values come back byte for byte.
    const auto stored = store.query({});
    EXPECT_EQ(stored[0].headers[3].value, std::string("\xff\x00\x01", 3));
    EXPECT_EQ(store.task_replays("t-1", "agentline.events"), 0);
    store.mark_replayed(stored[0].id, "agentline.events", 10);
    EXPECT_EQ(store.task_replays("t-1", "agentline.events"), 1);
    EXPECT_EQ(store.query({}).size(), 1u) << "replayed records are left out unless asked for";
    Filter all;
    all.include_replayed = true;
    EXPECT_EQ(store.query(all).size(), 2u);
    EXPECT_EQ(store.count_undigested().first, 2);
    store.mark_digested(store.count_undigested().second);
    EXPECT_EQ(store.count_undigested().first, 0);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
}

TEST(DlqStoreTest, TimesAreReadInEveryDocumentedForm) {
  const std::int64_t now = 1'800'000'000'000;
  EXPECT_EQ(parse_time("15m", now), now - 15 * 60'000);
  EXPECT_EQ(parse_time("2h", now), now - 2 * 3'600'000);
  EXPECT_EQ(parse_time("1d", now), now - 86'400'000);
  EXPECT_EQ(parse_time("2026-11-22T10:00:00Z", now), 1'795'341'600'000);
  EXPECT_EQ(parse_time("2026-11-22", now), 1'795'305'600'000);
  EXPECT_EQ(parse_time("1795341600000", now), 1'795'341'600'000);
  EXPECT_FALSE(parse_time("yesterday", now));
  EXPECT_FALSE(parse_time("5x", now));
}

TEST(DigestTest, OneMessageSummarizesByReasonJobAndTopicInSlackFormat) {
  std::vector<StoredRecord> records;
  for (int i = 0; i < 7; ++i) {
    StoredRecord r;
    r.id = i + 1;
    r.info.error_class = i < 5 ? "timeout" : "schema_violation";
    r.info.job_id = i % 2 ? "j-1" : "j-2";
    r.info.task_id = "t-" + std::to_string(i);
    r.info.original_topic = "agentline.tasks.submitted";
    r.info.error_message = "failed";
    r.info.dead_lettered_ms = 1'795'341'600'000 + i * 1000;
    records.push_back(r);
  }
  auto m = nlohmann::json::parse(Escalator::digest_message(records, 1200, "see dlq-escalator list"));
  EXPECT_NE(m["text"].get<std::string>().find("1200 dead-lettered records"), std::string::npos);
  EXPECT_EQ(m["agentline"]["records"], 1200);
  EXPECT_EQ(m["agentline"]["by_reason"]["timeout"], 5);
  EXPECT_EQ(m["agentline"]["by_job"]["j-1"], 3);
  EXPECT_EQ(m["blocks"][0]["type"], "header");
  const std::string all = m.dump();
  EXPECT_NE(all.find("Details cover the first 7"), std::string::npos);
  EXPECT_NE(all.find("see dlq-escalator list"), std::string::npos);
  EXPECT_LT(all.find("`timeout`: 5"), all.find("`schema_violation`: 2")) << "the biggest reason first";
}

}  // namespace
}  // namespace agentline::dlq
