#include "agentline/config/options.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using agentline::config::ConfigError;
using agentline::config::OptionSet;

namespace {

struct Settings {
  std::string bootstrap = "default:9092";
  int max_in_flight = 16;
  std::map<std::string, std::string> kafka;
};

void declare(OptionSet& o, Settings& s) {
  o.add("bootstrap-servers", &s.bootstrap, "brokers");
  o.add("max-in-flight", &s.max_in_flight, "parallelism");
  o.add_kafka_properties(&s.kafka);
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << content;
  return path.string();
}

class OptionsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {"AGENTLINE_MAX_IN_FLIGHT", "AGENTLINE_KAFKA_SECURITY_PROTOCOL", "AGENTLINE_CONFIG"}) {
      ::unsetenv(v);
    }
  }
};

}  // namespace

TEST_F(OptionsTest, DefaultsFileEnvironmentAndFlagsInThatOrder) {
  Settings s;
  OptionSet o("svc", "test");
  declare(o, s);
  auto file = write_temp("agentline-opts.toml", "bootstrap-servers = \"file:9092\"\nmax-in-flight = 4\n");
  ::setenv("AGENTLINE_MAX_IN_FLIGHT", "8", 1);
  o.parse(std::vector<std::string>{"--config", file});
  EXPECT_EQ(s.bootstrap, "file:9092") << "file beats default";
  EXPECT_EQ(s.max_in_flight, 8) << "environment beats file";

  Settings s2;
  OptionSet o2("svc", "test");
  declare(o2, s2);
  o2.parse(std::vector<std::string>{"--config", file, "--max-in-flight", "32"});
  EXPECT_EQ(s2.max_in_flight, 32) << "flag beats environment";
}

// The Helm chart names each service's file with AGENTLINE_CONFIG: it was never read (CLI11 reads
// the file before the environment), and the chart's per-service config had no effect.
TEST_F(OptionsTest, TheConfigFileNamedByAgentlineConfigIsReadAndConfigOnTheCommandLineWins) {
  Settings s;
  OptionSet o("svc", "test");
  declare(o, s);
  auto file = write_temp("agentline-opts-env.toml", "bootstrap-servers = \"env-file:9092\"\n");
  ::setenv("AGENTLINE_CONFIG", file.c_str(), 1);
  o.parse(std::vector<std::string>{});
  EXPECT_EQ(s.bootstrap, "env-file:9092");

  Settings s2;
  OptionSet o2("svc", "test");
  declare(o2, s2);
  auto flag_file = write_temp("agentline-opts-flag.toml", "bootstrap-servers = \"flag-file:9092\"\n");
  o2.parse(std::vector<std::string>{"--config", flag_file});
  EXPECT_EQ(s2.bootstrap, "flag-file:9092");

  Settings s3;
  OptionSet o3("svc", "test");
  declare(o3, s3);
  ::setenv("AGENTLINE_CONFIG", "/nonexistent/agentline.toml", 1);
  EXPECT_THROW(o3.parse(std::vector<std::string>{}), ConfigError)
      << "a file the environment names and nobody can read is an error, not silently nothing";
}

TEST_F(OptionsTest, UnknownFlagsAndConfigKeysAreErrors) {
  Settings s;
  OptionSet o("svc", "test");
  declare(o, s);
  EXPECT_THROW(o.parse(std::vector<std::string>{"--max-inflight", "3"}), ConfigError);

  Settings s2;
  OptionSet o2("svc", "test");
  declare(o2, s2);
  auto file = write_temp("agentline-bad.toml", "max-inflight = 3\n");
  EXPECT_THROW(o2.parse(std::vector<std::string>{"--config", file}), ConfigError);
}

TEST_F(OptionsTest, KafkaPropertiesPassThroughFromFlagsEnvironmentAndSecretFiles) {
  Settings s;
  OptionSet o("svc", "test");
  declare(o, s);
  ::setenv("AGENTLINE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
  auto secret = write_temp("agentline-secret", "s3cret\n");
  o.parse(std::vector<std::string>{"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.password.file=" + secret});
  EXPECT_EQ(s.kafka.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(s.kafka.at("sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(s.kafka.at("sasl.password"), "s3cret") << "read from the file, newline trimmed";
  EXPECT_FALSE(s.kafka.count("sasl.password.file"));
  EXPECT_TRUE(agentline::config::is_secret_key("sasl.password"));
  EXPECT_FALSE(agentline::config::is_secret_key("security.protocol"));
}

TEST_F(OptionsTest, MalformedKafkaPropertyIsAnError) {
  Settings s;
  OptionSet o("svc", "test");
  declare(o, s);
  EXPECT_THROW(o.parse(std::vector<std::string>{"-X", "no-equals-sign"}), ConfigError);
}

TEST(OptionNames, EnvironmentVariableNamesAreDerivedFromFlags) {
  EXPECT_EQ(OptionSet::env_name("bootstrap-servers"), "AGENTLINE_BOOTSTRAP_SERVERS");
  EXPECT_EQ(OptionSet::env_name("shutdown-grace-ms"), "AGENTLINE_SHUTDOWN_GRACE_MS");
}

TEST_F(OptionsTest, DurationsReadTheirUnitOrTheOneTheNameSaysFromFlagsFilesAndTheEnvironment) {
  using namespace std::chrono_literals;
  std::chrono::milliseconds open_wait = 30s;
  std::chrono::nanoseconds slow = 0ns;
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);
  OptionSet o("svc", "test");
  o.add("open-wait-ms", &open_wait, "time open");
  o.add("slow-call-ms", &slow, "slow call");
  o.add("job-retention", &retention, "kept", std::chrono::seconds(1));
  auto file = write_temp("agentline-durations.toml", "slow-call-ms = \"2s\"\n");
  ::setenv("AGENTLINE_JOB_RETENTION", "90m", 1);
  o.parse(std::vector<std::string>{"--config", file, "--open-wait-ms", "500"});
  ::unsetenv("AGENTLINE_JOB_RETENTION");
  EXPECT_EQ(open_wait, 500ms) << "a bare number is in the unit the name says";
  EXPECT_EQ(slow, 2s) << "a unit converts (the config file)";
  EXPECT_EQ(retention, 90min) << "the environment";

  std::chrono::milliseconds d = 1s;
  OptionSet bad("svc", "test");
  bad.add("wait-ms", &d, "wait");
  EXPECT_THROW(bad.parse(std::vector<std::string>{"--wait-ms", "soon"}), ConfigError);
  EXPECT_THROW(bad.parse(std::vector<std::string>{"--wait-ms", "-5"}), ConfigError);
  EXPECT_EQ(agentline::config::format_duration(std::chrono::hours(24 * 7)), "7d");
  EXPECT_EQ(agentline::config::format_duration(1500ms), "1500ms");
  EXPECT_EQ(agentline::config::parse_duration("7d"), std::chrono::hours(24 * 7));
  EXPECT_EQ(agentline::config::parse_duration("30"), 30s) << "bare: seconds unless told";
}

TEST_F(OptionsTest, ChecksAfterParsingTurnBadValuesIntoConfigurationErrors) {
  int probes = 1;
  OptionSet o("svc", "test");
  o.add("probes", &probes, "probes");
  o.after_parse([&] {
    if (probes < 1) throw std::invalid_argument("--probes must be at least 1");
  });
  EXPECT_NO_THROW(o.parse(std::vector<std::string>{"--probes", "3"}));
  OptionSet o2("svc", "test");
  o2.add("probes", &probes, "probes");
  o2.after_parse([&] {
    if (probes < 1) throw std::invalid_argument("--probes must be at least 1");
  });
  try {
    o2.parse(std::vector<std::string>{"--probes", "0"});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--probes must be at least 1"), std::string::npos);
  }
}
