#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "targets.h"

namespace agentline::outbox {
namespace {

namespace fs = std::filesystem;

class FilesystemTargetTest : public ::testing::Test {
 protected:
  FilesystemTargetTest() {
    root_ = fs::temp_directory_path() / ("fs-target-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(root_);
    TargetConfig c;
    c.output_root = (root_ / "out").string();
    target_ = make_target(c);
  }
  ~FilesystemTargetTest() override { fs::remove_all(root_); }
  static OutboxItem file(const std::string& path, const std::string& content) {
    OutboxItem it;
    it.job_id = "job";
    it.task_id = it.item_id = "t";
    it.staging_key = "job/t";
    it.kind = "file";
    it.path = path;
    it.content = content;
    return it;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static inline int counter_ = 0;
  fs::path root_;
  std::unique_ptr<Target> target_;
};

TEST_F(FilesystemTargetTest, WritesUnderTheJobFolderAndARepeatChangesNothing) {
  auto first = target_->upload(file("src/app.py", "x = 1\n"));
  ASSERT_EQ(first.kind, UploadOutcome::Kind::kUploaded) << first.error;
  EXPECT_EQ(first.remote_id, "job/src/app.py");
  EXPECT_FALSE(first.already_there);
  EXPECT_EQ(read(root_ / "out/job/src/app.py"), "x = 1\n");
  auto again = target_->upload(file("src/app.py", "x = 1\n"));
  EXPECT_EQ(again.kind, UploadOutcome::Kind::kUploaded);
  EXPECT_TRUE(again.already_there);
  auto newer = target_->upload(file("src/app.py", "x = 2\n"));
  EXPECT_FALSE(newer.already_there);
  EXPECT_EQ(read(root_ / "out/job/src/app.py"), "x = 2\n");
  int entries = 0;
  for (const auto& e : fs::recursive_directory_iterator(root_ / "out")) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1) << "a temporary file was left behind";
}

TEST_F(FilesystemTargetTest, PathsThatEscapeTheRootAreRefusedForGood) {
  for (const std::string bad : {"../evil.py", "/etc/passwd", "a/../../b", "a\\b", ""}) {
    auto r = target_->upload(file(bad, "x"));
    EXPECT_EQ(r.kind, UploadOutcome::Kind::kPermanent) << bad;
    EXPECT_EQ(r.error_class, "unsafe_path") << bad;
  }
  // A symlink planted inside the root does not lead a write outside it.
  fs::create_directories(root_ / "out/job");
  fs::create_directories(root_ / "elsewhere");
  fs::create_directory_symlink(root_ / "elsewhere", root_ / "out/job/link");
  auto r = target_->upload(file("link/x.py", "x"));
  EXPECT_EQ(r.kind, UploadOutcome::Kind::kPermanent);
  EXPECT_EQ(r.error_class, "unsafe_path");
  EXPECT_FALSE(fs::exists(root_ / "elsewhere/x.py"));
  // Nor does a symlink in the file's place: the file it points at keeps its content.
  { std::ofstream(root_ / "elsewhere/secret") << "keep"; }
  fs::create_symlink(root_ / "elsewhere/secret", root_ / "out/job/f.py");
  r = target_->upload(file("f.py", "overwritten"));
  EXPECT_EQ(r.kind, UploadOutcome::Kind::kPermanent);
  EXPECT_EQ(r.error_class, "unsafe_path");
  EXPECT_EQ(read(root_ / "elsewhere/secret"), "keep");
  // A symlinked job folder is refused too.
  fs::create_directory_symlink(root_ / "elsewhere", root_ / "out/job2");
  auto moved = file("y.py", "y");
  moved.job_id = "job2";
  r = target_->upload(moved);
  EXPECT_EQ(r.kind, UploadOutcome::Kind::kPermanent);
  EXPECT_FALSE(fs::exists(root_ / "elsewhere/y.py"));
}

TEST_F(FilesystemTargetTest, StructuralItemsAreRecordedWithTheirParent) {
  OutboxItem story;
  story.job_id = "job";
  story.task_id = story.item_id = "story-1";
  story.kind = "story";
  story.title = "Checkout";
  story.parent_id = "epic-1";
  story.parent_remote_id = "job/.agentline/items/epic-1.json";
  auto r = target_->upload(story);
  ASSERT_EQ(r.kind, UploadOutcome::Kind::kUploaded);
  const auto text = read(root_ / "out/job/.agentline/items/story-1.json");
  EXPECT_NE(text.find("\"parent\": \"job/.agentline/items/epic-1.json\""), std::string::npos) << text;
}

TEST(TargetConfigTest, IncompleteConfigurationsAreRejected) {
  TargetConfig c;
  c.kind = "webhook";
  EXPECT_THROW(make_target(c), std::invalid_argument);
  c.kind = "azure-devops";
  c.ado_org_url = "https://dev.azure.com/acme";
  c.ado_project = "shop";
  EXPECT_THROW(make_target(c), std::invalid_argument) << "no PAT";
  c.kind = "ftp";
  EXPECT_THROW(make_target(c), std::invalid_argument);
  EXPECT_EQ(ado_tag("job/t").rfind("agentline-", 0), 0u);
  EXPECT_EQ(ado_tag("job/t"), ado_tag("job/t"));
  EXPECT_NE(ado_tag("job/t"), ado_tag("job/u"));
}

}  // namespace
}  // namespace agentline::outbox
