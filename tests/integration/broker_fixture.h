#pragma once
// Test helpers that talk to a broker over TCP: an embedded broker per test, a producer, a
// reader of whole topics, service processes started from the real binaries, and an HTTP GET.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/embedded_broker.h"
#include "agentline/kafka/record.h"
#include "agentline/kafka/topic_catalog.h"

namespace agentline::kafka {
class Producer;
}

namespace agentline::testing {

// By default each fixture starts its own embedded broker. When AGENTLINE_TEST_KAFKA_STATE
// names the state directory of tests/kafka/kafka-local.sh, it uses that real Kafka instead,
// with a topic prefix of its own (so tests never see each other's records) and the
// catalog's topics created through `ClusterAdmin::apply`.
//
// The consumer group protocol of the services and runtimes a test starts is the default (auto)
// unless AGENTLINE_GROUP_PROTOCOL says otherwise (the services read that variable themselves;
// group_protocol() gives it to runtimes a test builds). The embedded broker holds consumer-
// protocol members to the tests' 6 s session timeout, like the classic members they start.
kafka::GroupProtocol group_protocol();

class BrokerFixture {
 public:
  // `embedded` configures the embedded broker (ignored on a real Kafka); its default session
  // timeout is the tests' 6 s.
  explicit BrokerFixture(kafka::TopicCatalog catalog,
                         kafka::EmbeddedBroker::Options embedded = {1, std::chrono::seconds(6)});
  ~BrokerFixture();

  const std::string& bootstrap() const { return bootstrap_; }
  bool real_kafka() const { return broker_ == nullptr; }
  const kafka::TopicCatalog& catalog() const { return catalog_; }

  void produce(const std::string& topic, const std::string& key, const std::string& value,
               const kafka::Headers& headers = {});
  // Produces all records, then waits for every acknowledgement.
  void produce_batch(const std::vector<kafka::OutgoingRecord>& records);
  // Every record of `topic` up to its current end.
  std::vector<kafka::InboundRecord> read_available(const std::string& topic);
  // Reads `topic` from the beginning until `count` records arrived or `timeout` passed.
  std::vector<kafka::InboundRecord> read(const std::string& topic, std::size_t count,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Records of `topic` the group has not committed.
  std::int64_t lag(const std::string& group, const std::string& topic);
  // The bounded wait for "nothing more happens": until each group (a name of `inputs`) has
  // committed everything of its topics (logical names) and of its retry tiers. A service commits
  // a record only once what it produced for it is acknowledged, so then nothing it consumed is
  // still being worked on and nothing it would produce is still to come. False on timeout.
  bool settled(const std::map<std::string, std::vector<std::string>>& inputs,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Embedded broker only: refuse every connection (down) or accept them again.
  void set_broker_down(bool down);

 private:
  kafka::TopicCatalog catalog_;
  std::unique_ptr<kafka::EmbeddedBroker> broker_;
  std::string bootstrap_;
  std::unique_ptr<kafka::Producer> producer_;  // destroyed before the broker
};

// The pipeline's groups under their default names and the topics each consumes.
inline const std::map<std::string, std::vector<std::string>> kPipelineInputs{
    {"priority-assigner", {"tasks.submitted"}},
    {"dev-fix-worker", {"tasks.fix", "tasks.critical", "tasks.high", "tasks.normal", "tasks.low"}},
    {"qa-worker", {"qa.requests"}},
    {"router", {"events", "tasks.submitted", "dlq"}},
    {"outbox-uploader", {"deploy.requests"}},
    {"dlq-escalator", {"dlq"}}};

// A service binary run as a child process; stderr goes to a log file kept for failures.
class ServiceProcess {
 public:
  ServiceProcess(std::string binary, std::vector<std::string> args);
  ~ServiceProcess();
  void signal(int sig);
  // Waits for exit; the exit status, or -signal when killed, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

std::string bin(const std::string& name);
// A file of the source tree, e.g. source_path("tests/support/fake_llm_server.py").
std::string source_path(const std::string& relative);
// The real-Kafka state directory, or "" when the tests run on the embedded broker.
std::string real_kafka_state();
int free_port();
// Body of GET http://127.0.0.1:port/path, or "" when unreachable. `status` gets the code.
std::string http_get(int port, const std::string& path, int* status = nullptr);
// `headers`: extra header lines ("Authorization: Bearer x").
std::string http_request(int port, const std::string& method, const std::string& path, const std::string& body,
                         int* status = nullptr, const std::vector<std::string>& headers = {});
// Polls `condition` every 50 ms until true or timeout.
// A test's wait, stretched by AGENTLINE_TEST_TIME_SCALE (the sanitizer tiers set it: their
// binaries run several times slower; what is checked stays the same).
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);
// Polls `condition` until it holds or the (scaled) timeout passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A message as the schemas have it, serialized: {"id": "<id_prefix>-<task_id>", "task_id",
// "job_id", "type", "created_at", "payload"}. The one task builder of the integration tests.
std::string message(const std::string& type, const std::string& job_id, const std::string& task_id,
                    const nlohmann::json& payload, const std::string& id_prefix = "m");
// A DEV_TASK writing `path` ("write <path>"), its payload extended by `extra`.
std::string dev_task(const std::string& job_id, const std::string& task_id, const std::string& path,
                     const nlohmann::json& extra = nlohmann::json::object());

}  // namespace agentline::testing
