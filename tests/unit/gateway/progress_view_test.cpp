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
  const auto document = json::parse(before->text());
  EXPECT_EQ(document["files"].size(), static_cast<std::size_t>(kFiles)) << "a snapshot has every file";
  EXPECT_EQ(document["files"]["f3"]["status"], "submitted");
  EXPECT_EQ(document["files_total"], kFiles);
  view.apply(record("j/f7", file("f7", "delivered", ++version)));
  view.apply(record("j/f9", file("f9", "dead_lettered", ++version)));
  const auto change = view.wait_for_change("j", before->sequence, std::chrono::milliseconds(0), before->sequence);
  ASSERT_TRUE(change);
  const auto delta = json::parse(change->text());
  EXPECT_EQ(delta["files"].size(), 2u);
  EXPECT_EQ(delta["files"]["f7"]["status"], "delivered");
  EXPECT_EQ(delta["files_delivered_or_failed"], 2);
  EXPECT_LT(change->text().size(), 1000u) << "the change is small; the document is " << before->text().size();
  const auto after = view.job("j");
  EXPECT_NE(after->etag, before->etag);
  EXPECT_EQ(view.summary("j")->etag, after->etag) << "the summary and the document share the job's tag";
  EXPECT_TRUE(view.summary("j")->files.empty());
  // A record older than what the view holds (a second partition's late copy) changes nothing.
  view.apply(record("j/f7", file("f7", "generated", version - 5)));
  EXPECT_EQ(json::parse(view.job("j")->text())["files"]["f7"]["status"], "delivered");
  EXPECT_EQ(view.job("j")->summary["files_delivered_or_failed"], 2);
  EXPECT_EQ(view.job("j")->etag, after->etag) << "nothing changed";
}

TEST(ProgressViewTest, TheDocumentIsWrittenInPiecesAndReadersShareTheFilesText) {
  ProgressView view;
  for (int i = 0; i < 1000; ++i)
    view.apply(
        record("j/src/f" + std::to_string(i) + ".py", file("src/f" + std::to_string(i) + ".py", "generated", i + 1)));
  const auto a = view.job("j");
  const auto b = view.job("j");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->files.size(), 1000u);
  EXPECT_EQ(a->files[0].get(), b->files[0].get()) << "two readers hold one copy of a file's text";
  std::vector<std::size_t> pieces;
  std::string joined;
  ASSERT_TRUE(a->write(
      [&](std::string_view piece) {
        pieces.push_back(piece.size());
        joined.append(piece);
        return true;
      },
      4096));
  EXPECT_GT(pieces.size(), 5u);
  for (std::size_t i = 0; i + 1 < pieces.size(); ++i) EXPECT_LT(pieces[i], 4096u + 200u);
  EXPECT_EQ(joined, a->text());
  const auto doc = json::parse(joined);
  EXPECT_EQ(doc["files"].size(), 1000u);
  EXPECT_EQ(doc["job_id"], "j");
  // A reader that goes away stops the writing.
  int calls = 0;
  EXPECT_FALSE(a->write([&](std::string_view) { return ++calls < 2; }, 4096));
  EXPECT_EQ(calls, 2);
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
