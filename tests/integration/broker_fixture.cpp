#include "broker_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "agentline/kafka/admin.h"
#include "agentline/kafka/producer.h"
#include "kafka/handles.h"

namespace agentline::testing {

using namespace kafka::detail;

std::string real_kafka_state() {
  const char* state = std::getenv("AGENTLINE_TEST_KAFKA_STATE");
  return state ? state : "";
}

kafka::GroupProtocol group_protocol() {
  const char* name = std::getenv("AGENTLINE_GROUP_PROTOCOL");
  return kafka::parse_group_protocol(name != nullptr && *name != '\0' ? name : "auto");
}

BrokerFixture::BrokerFixture(kafka::TopicCatalog catalog, kafka::EmbeddedBroker::Options embedded)
    : catalog_(std::move(catalog)) {
  const std::string state = real_kafka_state();
  if (state.empty()) {
    broker_ = std::make_unique<kafka::EmbeddedBroker>(catalog_, embedded);
    bootstrap_ = broker_->bootstrap_servers();
    return;
  }
  std::ifstream in(state + "/bootstrap");
  if (!std::getline(in, bootstrap_) || bootstrap_.empty()) {
    throw std::runtime_error("AGENTLINE_TEST_KAFKA_STATE=" + state +
                             " has no bootstrap file; start tests/kafka/kafka-local.sh");
  }
  static int counter = 0;
  catalog_.set_prefix(catalog_.prefix() + "p" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".");
  kafka::ClusterAdmin(kafka::KafkaSettings{bootstrap_, {}, ""}).apply(catalog_, 1);
}

BrokerFixture::~BrokerFixture() = default;

void BrokerFixture::produce(const std::string& topic, const std::string& key, const std::string& value,
                            const kafka::Headers& headers) {
  if (!producer_)
    producer_ = std::make_unique<kafka::Producer>(kafka::KafkaSettings{bootstrap(), {}, ""}, "test-producer");
  auto report = producer_->send_and_wait({topic, key, value, headers, std::nullopt});
  if (!report.ok) throw std::runtime_error("produce to " + topic + " failed: " + report.error);
}

void BrokerFixture::produce_batch(const std::vector<kafka::OutgoingRecord>& records) {
  if (!producer_)
    producer_ = std::make_unique<kafka::Producer>(kafka::KafkaSettings{bootstrap(), {}, ""}, "test-producer");
  std::atomic<int> failed{0};
  for (const auto& r : records) {
    producer_->send(r, [&failed](const kafka::DeliveryReport& report) { failed += report.ok ? 0 : 1; });
  }
  while (!producer_->flush(std::chrono::seconds(10))) {
  }
  if (failed > 0) throw std::runtime_error(std::to_string(failed.load()) + " records were not acknowledged");
}

std::vector<kafka::InboundRecord> BrokerFixture::read_available(const std::string& topic) {
  kafka::ClusterAdmin admin(kafka::KafkaSettings{bootstrap(), {}, ""});
  // Right after the fixture creates its topics, real Kafka may still be electing leaders
  // ("Not leader for partition"): ask again for a while before giving up.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    try {
      auto offsets = admin.offsets({topic});
      return read(topic, static_cast<std::size_t>(offsets.at(0).messages), std::chrono::seconds(30));
    } catch (const std::runtime_error&) {
      if (std::chrono::steady_clock::now() >= deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
}

std::vector<kafka::InboundRecord> BrokerFixture::read(const std::string& topic, std::size_t count,
                                                      std::chrono::milliseconds timeout) {
  kafka::KafkaSettings settings{bootstrap(), {}, ""};
  auto consumer = make_client(RD_KAFKA_CONSUMER, make_conf(settings, {{"group.id", "test-reader"}}, {}));
  const rd_kafka_metadata_t* md_raw = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(consumer.get(), topic.c_str(), nullptr);
  rd_kafka_metadata(consumer.get(), 0, rkt, &md_raw, 5000);
  MetadataPtr md(md_raw);
  rd_kafka_topic_destroy(rkt);
  PartitionListPtr parts(rd_kafka_topic_partition_list_new(8));
  if (md && md->topic_cnt == 1) {
    for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
      rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_assign(consumer.get(), parts.get());
  std::vector<kafka::InboundRecord> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    MessagePtr m(rd_kafka_consumer_poll(consumer.get(), 100));
    if (!m || m->err) continue;
    kafka::InboundRecord r = to_inbound_record(m.get());
    out.push_back(std::move(r));
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

void BrokerFixture::set_broker_down(bool down) {
  if (broker_ == nullptr) throw std::logic_error("set_broker_down needs the embedded broker");
  broker_->set_down(down);
}

std::int64_t BrokerFixture::lag(const std::string& group, const std::string& topic) {
  kafka::ClusterAdmin admin(kafka::KafkaSettings{bootstrap(), {}, ""});
  return admin.group_lag(group, topic);
}

bool BrokerFixture::settled(const std::map<std::string, std::vector<std::string>>& inputs,
                            std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [group, topics] : inputs) {
    for (const auto& t : topics) pairs.emplace_back(group, catalog_.topic(t));
    for (const auto& tier : catalog_.retry_tiers(group)) pairs.emplace_back(group, tier.topic);
  }
  return eventually(
      [&] {
        return std::all_of(pairs.begin(), pairs.end(), [&](const auto& p) { return lag(p.first, p.second) == 0; });
      },
      timeout);
}

ServiceProcess::ServiceProcess(std::string binary, std::vector<std::string> args) {
  static int counter = 0;
  log_path_ = "/tmp/agentline-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".log";
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::vector<char*> argv{binary.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
}

ServiceProcess::~ServiceProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

void ServiceProcess::signal(int sig) { ::kill(pid_, sig); }

bool ServiceProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::optional<int> ServiceProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

std::string ServiceProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The only translation unit that sees the build's paths (tests/CMakeLists.txt), so that the
// others compile the same in every checkout and ccache serves them to a fresh clone.
std::string bin(const std::string& name) { return std::string(AGENTLINE_BIN_DIR) + "/" + name; }

std::string source_path(const std::string& relative) { return std::string(AGENTLINE_SOURCE_DIR) + "/" + relative; }

namespace {

// True when `port` was reserved here, in this folder shared by every test process: one file per
// port, created exclusively, holding the owner's pid. A file whose owner has exited is stale and
// taken over.
bool reserve_port(const std::string& dir, int port) {
  const std::string path = dir + "/" + std::to_string(port);
  for (int tries = 0; tries < 2; ++tries) {
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
      const std::string pid = std::to_string(::getpid());
      const bool written = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      ::close(fd);
      return written;
    }
    std::ifstream in(path);
    long owner = 0;
    if (!(in >> owner) || owner <= 0 || owner == ::getpid() || ::kill(static_cast<pid_t>(owner), 0) == 0 ||
        errno != ESRCH)
      return false;  // in use (or being written): another port
    ::unlink(path.c_str());
  }
  return false;
}

}  // namespace

// A port below Linux's ephemeral range (32768-60999): the tests run side by side, and their
// brokers and clients take ephemeral ports, which could take a port handed out here before the
// service binds it. A service binds its port a moment after the test draws it, so a test running
// beside this one could draw the same free port meanwhile, and one of the two services then failed
// to listen (DeliveryTest's filesystem uploader under make test-tsan: "fatal: cannot listen on
// 127.0.0.1:24564"). So each port handed out is reserved for this process, across the test
// processes of the machine, until it exits.
int free_port() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  static std::mt19937 rng(std::random_device{}());
  static const std::string dir = [] {
    // Per user: another user's folder would not be writable here.
    const std::string d =
        (std::filesystem::temp_directory_path() / ("agentline-test-ports-" + std::to_string(::getuid()))).string();
    std::filesystem::create_directories(d);
    return d;
  }();
  std::uniform_int_distribution<int> draw(20000, 32000);
  for (int attempt = 0; attempt < 500; ++attempt) {
    const int port = draw(rng);
    if (!reserve_port(dir, port)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return port;  // reserved, so never handed out twice
  }
  throw std::runtime_error("no free port between 20000 and 32000");
}

std::string http_get(int port, const std::string& path, int* status) {
  return http_request(port, "GET", path, "", status);
}

std::string http_request(int port, const std::string& method, const std::string& path, const std::string& body,
                         int* status, const std::vector<std::string>& headers) {
  if (status) *status = 0;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (status && resp.size() > 12) *status = std::atoi(resp.c_str() + 9);
  auto start = resp.find("\r\n\r\n");
  return start == std::string::npos ? "" : resp.substr(start + 4);
}

std::chrono::milliseconds scaled(std::chrono::milliseconds timeout) {
  static const double scale = [] {
    const char* v = std::getenv("AGENTLINE_TEST_TIME_SCALE");
    const double s = v ? std::atof(v) : 1.0;
    return s >= 1.0 ? s : 1.0;
  }();
  return std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(timeout.count()) * scale));
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

std::string message(const std::string& type, const std::string& job_id, const std::string& task_id,
                    const nlohmann::json& payload, const std::string& id_prefix) {
  return nlohmann::json{
      {"id", id_prefix + "-" + task_id},      {"task_id", task_id}, {"job_id", job_id}, {"type", type},
      {"created_at", "2026-11-22T10:00:00Z"}, {"payload", payload}}
      .dump();
}

std::string dev_task(const std::string& job_id, const std::string& task_id, const std::string& path,
                     const nlohmann::json& extra) {
  nlohmann::json payload = {{"path", path}, {"description", "write " + path}};
  payload.update(extra);
  return message("DEV_TASK", job_id, task_id, payload);
}

}  // namespace agentline::testing
