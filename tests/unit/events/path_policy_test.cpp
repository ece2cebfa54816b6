#include "agentline/events/path_policy.h"

#include <gtest/gtest.h>

using agentline::events::unsafe_path_reason;

TEST(PathPolicy, AcceptsOrdinaryRelativePaths) {
  for (const char* p : {"src/main.py", "a", "pkg/sub/mod_1.rs", "docs/README.md", ".github/workflows/ci.yml",
                        "weird name/with spaces.txt", "café/naïve.py"}) {
    EXPECT_FALSE(unsafe_path_reason(p).has_value()) << p;
  }
}

TEST(PathPolicy, RejectsPathsThatEscapeOrConfuseTheOutputRoot) {
  struct Row {
    std::string path;
    std::string reason_part;
  } rows[] = {
      {"", "empty"},
      {"../../etc/passwd", ".."},
      {"src/../../x", ".."},
      {"/etc/passwd", "absolute"},
      {"C:/Windows/x", "drive"},
      {"src\\..\\x", "backslash"},
      {"a//b", "empty segment"},
      {"a/./b", "'.'"},
      {"src/", "empty segment"},
      {std::string("a\0b", 3), "control"},
      {"a\nb", "control"},
      {std::string(1025, 'a'), "longer"},
      {"src/" + std::string(256, 'a') + ".py", "longer than 255 bytes"},
  };
  for (const auto& row : rows) {
    auto reason = unsafe_path_reason(row.path);
    ASSERT_TRUE(reason.has_value()) << row.path;
    EXPECT_NE(reason->find(row.reason_part), std::string::npos) << row.path << " -> " << *reason;
  }
}

TEST(PathPolicy, AFolderNameIsNoId) {
  EXPECT_TRUE(agentline::events::unsafe_id_reason("."));
  EXPECT_TRUE(agentline::events::unsafe_id_reason(".."));
  EXPECT_FALSE(agentline::events::unsafe_id_reason("..a"));
  EXPECT_FALSE(agentline::events::unsafe_id_reason("job.1"));
  EXPECT_FALSE(agentline::events::unsafe_id_reason(std::string(255, 'a')));
}
