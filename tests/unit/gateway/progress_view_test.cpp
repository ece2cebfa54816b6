#include "progress_view.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace agentline::gateway {
namespace {

using nlohmann::json;

kafka::InboundRecord record(const std::string& key, const json& value) {
  kafka::InboundRecord r;
  r.key = key;
  r.value = value.dump();
  return r;
}

kafka::InboundRecord tombstone(const std::string& key) {
  kafka::InboundRecord r;
  r.key = key;
  r.tombstone = true;
  return r;
}

json file(const std::string& path, const std::string& status, int version) {
  return {{"job_id", "j"}, {"path", path}, {"status", status}, {"version", version}};
}

TEST(ProgressViewTest, AChangeCarriesOnlyTheFilesItChangedWhateverTheJobSize) {
  ProgressView view;
  constexpr int kFiles = 10000;
  int version = 0;
  for (int i = 0; i < kFiles; ++i)
    view.apply(record("j/f" + std::to_string(i), file("f" + std::to_string(i), "submitted", ++version)));
  view.apply(record("j", {{"job_id", "j"}, {"files_total", kFiles}, {"version", ++version}}));
  const auto before = view.job("j");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->doc["files"].size(), static_cast<std::size_t>(kFiles)) << "a snapshot has every file";
  view.apply(record("j/f7", file("f7", "delivered", ++version)));
  view.apply(record("j/f9", file("f9", "dead_lettered", ++version)));
  const auto change = view.wait_for_change("j", before->sequence, std::chrono::milliseconds(0), before->sequence);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->doc["files"].size(), 2u);
  EXPECT_EQ(change->doc["files"]["f7"]["status"], "delivered");
  EXPECT_EQ(change->doc["files_delivered_or_failed"], 2);
  EXPECT_LT(change->doc.dump().size(), 1000u) << "the change is small; the document is " << before->doc.dump().size();
  // A record older than what the view holds (a second partition's late copy) changes nothing.
  view.apply(record("j/f7", file("f7", "generated", version - 5)));
  EXPECT_EQ(view.job("j")->doc["files"]["f7"]["status"], "delivered");
  EXPECT_EQ(view.job("j")->doc["files_delivered_or_failed"], 2);
}

TEST(ProgressViewTest, TheJobListCostsItsSummariesAndTombstonesDropAJob) {
  ProgressView view;
  view.apply(record("a/x.py", file("x.py", "delivered", 1)));
  view.apply(
      record("a", {{"job_id", "a"}, {"files_total", 1}, {"version", 2}, {"updated_at", "2026-12-02T10:00:00Z"}}));
  view.apply(
      record("b", {{"job_id", "b"}, {"files_total", 0}, {"version", 1}, {"updated_at", "2026-12-02T11:00:00Z"}}));
  auto jobs = view.jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]["job_id"], "b") << "newest first";
  EXPECT_FALSE(jobs[1].contains("files"));
  EXPECT_EQ(jobs[1]["complete"], true);
  // The router's retention: the file's tombstone, then the summary's.
  view.apply(tombstone("a/x.py"));
  view.apply(tombstone("a"));
  EXPECT_FALSE(view.job("a"));
  EXPECT_EQ(view.size(), 1u);
}

}  // namespace
}  // namespace agentline::gateway
