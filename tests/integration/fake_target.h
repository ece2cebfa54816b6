#pragma once
// Helpers of the delivery and DLQ tests: tests/support/fake_target_server.py (a flaky webhook,
// a digest receiver and Azure DevOps work items on loopback) as a child process, and running
// a command-line tool.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "broker_fixture.h"

namespace agentline::testing {

// tests/support/fake_target_server.py as a child process.
class FakeTarget {
 public:
  explicit FakeTarget(const std::string& pat = "") {
    const std::string port_file =
        "/tmp/agentline-fake-target-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    std::filesystem::remove(port_file);
    std::vector<std::string> args{"python3", source_path("tests/support/fake_target_server.py"), port_file};
    if (!pat.empty()) args.insert(args.end(), {"--pat", pat});
    process_ = std::make_unique<ServiceProcess>("/usr/bin/env", args);
    EXPECT_TRUE(
        eventually([&] { return std::filesystem::exists(port_file) && std::filesystem::file_size(port_file) > 0; },
                   std::chrono::seconds(10)));
    std::ifstream(port_file) >> port_;
    std::filesystem::remove(port_file);
  }
  int port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  void mode(const nlohmann::json& m) {
    int status = 0;
    http_request(port_, "POST", "/admin/mode", m.dump(), &status);
    ASSERT_EQ(status, 200);
  }
  void seed_ado(const std::string& tag, const std::string& title) {
    int status = 0;
    http_request(port_, "POST", "/admin/ado/seed", nlohmann::json{{"tag", tag}, {"title", title}}.dump(), &status);
    ASSERT_EQ(status, 200);
  }
  nlohmann::json stats() const {
    auto body = http_get(port_, "/admin/stats");
    return body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body);
  }

 private:
  static inline int counter_ = 0;
  std::unique_ptr<ServiceProcess> process_;
  int port_ = 0;
};

// Runs a command; returns its exit status and fills `out` with stdout.
inline int run_command(const std::string& command, std::string* out = nullptr) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  const int rc = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace agentline::testing
