// agentline: the operator's command line.
//   agentline broker              run the embedded broker (librdkafka mock cluster)
//   agentline up                  broker (unless --bootstrap-servers) + services, supervised
//   agentline submit FILE.jsonl   validate and publish tasks
//   agentline topics apply|list   create the catalog's topics / show them with counts
//   agentline lag                 records a group has not committed yet (optionally wait for 0)
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agentline/config/options.h"
#include "agentline/events/message_validator.h"
#include "agentline/events/plan_task.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/admin.h"
#include "agentline/kafka/embedded_broker.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_catalog.h"
#include "agentline/service/stop_signal.h"
#include "status.h"
#include "submit.h"
#include "supervisor.h"
#include "watch.h"

namespace fs = std::filesystem;
using namespace agentline;

namespace {

// `agentline broker`: SIGUSR1 takes the embedded broker down, SIGUSR2 brings it back (chaos tests).
std::atomic<int> g_broker_down{-1};
void on_broker_signal(int sig) { g_broker_down.store(sig == SIGUSR1 ? 1 : 0); }

// SIGTERM, SIGINT and SIGHUP end a process by default, but a container's PID 1 never gets a
// signal it has no handler for: `podman stop` or `timeout` would wait for `submit` or `watch`
// to end by itself. So the default is stated as a handler, with the shell's exit status of a
// process the signal ended (128 + its number). Commands that drain (broker, up) install their own.
void exit_on_signal(int sig) { std::_Exit(128 + sig); }

void exit_on_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = exit_on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
}

struct GlobalOptions {
  std::string bootstrap_servers;
  std::string state_dir = ".agentline";
  std::string catalog;
  std::string topic_prefix;
  std::vector<std::string> kafka;
  std::string log_level = "info";

  // librdkafka properties: AGENTLINE_KAFKA_<KEY> variables (as the services read them, e.g.
  // from the Helm chart's Secrets), overridden by -X flags.
  kafka::KafkaSettings settings() const {
    std::map<std::string, std::string> props;
    for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
      const std::string entry = *env;
      constexpr std::string_view kPrefix = "AGENTLINE_KAFKA_";
      const auto eq = entry.find('=');
      if (entry.rfind(kPrefix, 0) != 0 || eq == std::string::npos) continue;
      std::string key = entry.substr(kPrefix.size(), eq - kPrefix.size());
      for (char& c : key) c = c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      props[key] = entry.substr(eq + 1);
    }
    for (auto& [k, v] : config::parse_properties(kafka)) props[k] = v;
    return {bootstrap_servers, props, state_dir};
  }
  kafka::TopicCatalog load_catalog() const {
    auto c = kafka::TopicCatalog::load(catalog);
    if (!topic_prefix.empty()) c.set_prefix(topic_prefix);
    return c;
  }
};

void add_global_options(CLI::App& app, GlobalOptions& g) {
  auto env = [](const char* name) { return config::OptionSet::env_name(name); };
  app.add_option("--bootstrap-servers", g.bootstrap_servers, "Kafka cluster; empty: the embedded broker")
      ->envname(env("bootstrap-servers"));
  app.add_option("--state-dir", g.state_dir, "Where the embedded broker's address is kept")
      ->envname(env("state-dir"))
      ->capture_default_str();
  app.add_option("--catalog", g.catalog, "Topic catalog file; empty: the built-in catalog")->envname(env("catalog"));
  app.add_option("--topic-prefix", g.topic_prefix, "Prefix of every topic; empty: the catalog's")
      ->envname(env("topic-prefix"));
  app.add_option("-X,--kafka", g.kafka, "librdkafka property key=value (repeatable)")->allow_extra_args(false);
  app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error")->capture_default_str();
}

fs::path self_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

// The embedded broker's process writes its address to <state-dir>/bootstrap.
int cmd_broker(const GlobalOptions& g, const kafka::EmbeddedBroker::Options& options) {
  auto catalog = g.load_catalog();
  kafka::EmbeddedBroker broker(catalog, options);
  fs::create_directories(g.state_dir);
  fs::path file = fs::path(g.state_dir) / "bootstrap";
  {
    std::ofstream out(file.string() + ".tmp");
    out << broker.bootstrap_servers() << "\n";
  }
  fs::rename(file.string() + ".tmp", file);
  std::cout << "embedded broker (librdkafka mock cluster, memory only, ~5 MB or 100k messages per partition)\n"
            << "bootstrap: " << broker.bootstrap_servers() << "\n"
            << "topics: " << catalog.all_topics().size() << " created from the catalog\n"
            << "address written to " << file.string() << std::endl;
  service::install_stop_signals();
  struct sigaction sa {};
  sa.sa_handler = on_broker_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  while (!service::stop_requested()) {
    if (int down = g_broker_down.exchange(-1); down >= 0) {
      broker.set_down(down == 1);
      std::cout << (down == 1 ? "broker down (SIGUSR1): connections refused until SIGUSR2"
                              : "broker up again (SIGUSR2)")
                << std::endl;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fs::remove(file);
  return 0;
}

int cmd_topics_apply(const GlobalOptions& g, int replication_factor) {
  kafka::ClusterAdmin admin(g.settings());
  auto result =
      admin.apply(g.load_catalog(), replication_factor > 0 ? std::optional<int>(replication_factor) : std::nullopt);
  for (const auto& t : result.created) std::cout << "created  " << t << "\n";
  for (const auto& t : result.existing) std::cout << "exists   " << t << "\n";
  for (const auto& w : result.warnings) std::cout << "warning  " << w << "\n";
  std::cout << result.created.size() << " created, " << result.existing.size() << " already present\n";
  return 0;
}

int cmd_topics_list(const GlobalOptions& g) {
  auto catalog = g.load_catalog();
  std::vector<std::string> names;
  for (const auto& t : catalog.all_topics()) names.push_back(t.name);
  kafka::ClusterAdmin admin(g.settings());
  std::printf("%-48s %10s %10s\n", "TOPIC", "PARTITIONS", "MESSAGES");
  for (const auto& t : admin.offsets(names)) {
    if (t.exists) {
      std::printf("%-48s %10d %10lld\n", t.topic.c_str(), t.partitions, static_cast<long long>(t.messages));
    } else {
      std::printf("%-48s %10s %10s\n", t.topic.c_str(), "missing", "-");
    }
  }
  return 0;
}

int cmd_lag(const GlobalOptions& g, const std::string& group, const std::string& logical_topic, int wait_seconds) {
  auto catalog = g.load_catalog();
  kafka::ClusterAdmin admin(g.settings());
  const std::string topic = catalog.topic(logical_topic);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  for (;;) {
    auto lag = admin.group_lag(group, topic);
    if (lag == 0 || std::chrono::steady_clock::now() >= deadline) {
      std::cout << group << " lag on " << topic << ": " << lag << "\n";
      return lag == 0 ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// The embedded broker drops the oldest records of a partition past ~100k messages, so
// submit waits while priority-assigner's backlog on tasks.submitted exceeds `max_backlog`.
struct WaitOptions {
  int seconds = 0;  // 0: do not wait
  std::string gateway;
  std::string token_file;
};

// A goal for the planner (--goal): one PLAN_TASK, in place of a file of tasks.
struct GoalOptions {
  std::string goal;
  std::string job_id;
  std::string tenant;
  std::string language;
  std::string layout;
  int max_files = 0;
  std::int64_t budget_tokens = 0;
  double budget_usd = 0;
};

// A job's budget as the task schemas have it: {tokens, cost_usd}, those given.
nlohmann::json budget_of(std::int64_t tokens, double cost_usd) {
  nlohmann::json budget = nlohmann::json::object();
  if (tokens > 0) budget["tokens"] = tokens;
  if (cost_usd > 0) budget["cost_usd"] = cost_usd;
  return budget;
}

// Sets or changes a job's budget: a JOB_BUDGET_SET event the router applies to the job's
// progress (docs/llm-economics.md).
int cmd_budget(const GlobalOptions& g, const std::string& job, std::int64_t tokens, double cost_usd) {
  const nlohmann::json budget = budget_of(tokens, cost_usd);
  if (budget.empty()) {
    std::cerr << "budget takes --tokens, --cost-usd or both\n";
    return 2;
  }
  auto catalog = g.load_catalog();
  const std::string id = "budget-" + job + "-" + std::to_string(events::now_ms());
  const nlohmann::json event = {{"id", id},
                                {"task_id", id},
                                {"job_id", job},
                                {"type", "JOB_BUDGET_SET"},
                                {"created_at", events::now_iso8601()},
                                {"payload", {{"budget", budget}}}};
  if (auto failure = events::MessageValidator().validate_event(event)) {
    std::cerr << "not a valid budget: " << failure->message << "\n";
    return 2;
  }
  kafka::Producer producer(g.settings(), "agentline-budget");
  std::optional<kafka::DeliveryReport> report;
  producer.send(events::make_record(catalog.topic("events"), job, event, nullptr),
                [&](const kafka::DeliveryReport& r) { report = r; });
  producer.flush(std::chrono::seconds(30));
  if (!report || !report->ok) {
    std::cerr << "cannot publish the budget: " << (report ? report->error : "no delivery report in 30 s") << "\n";
    return 1;
  }
  std::cout << "job " << job << ": budget " << budget.dump() << "\n";
  return 0;
}

int cmd_submit(const GlobalOptions& g, const std::string& file, bool raw, long max_backlog, const WaitOptions& wait,
               const GoalOptions& goal) {
  auto catalog = g.load_catalog();
  if (goal.goal.empty() == file.empty()) {
    std::cerr << "submit takes a file of tasks or --goal, one of the two\n";
    return 2;
  }
  std::ifstream file_in;
  std::istringstream goal_in;
  if (!goal.goal.empty()) {
    nlohmann::json constraints = nlohmann::json::object();
    if (!goal.language.empty()) constraints["language"] = goal.language;
    if (!goal.layout.empty()) constraints["layout"] = goal.layout;
    if (goal.max_files > 0) constraints["max_files"] = goal.max_files;
    std::string job_id = goal.job_id;
    if (job_id.empty()) job_id = "goal-" + cli::new_traceparent().substr(3, 12);
    nlohmann::json plan_task = events::make_plan_task(job_id, goal.goal, constraints, goal.tenant);
    if (auto budget = budget_of(goal.budget_tokens, goal.budget_usd); !budget.empty())
      plan_task["payload"]["budget"] = budget;
    goal_in.str(plan_task.dump() + "\n");
    std::cout << "job " << job_id << ": goal submitted for planning\n";
  } else {
    file_in.open(file);
    if (!file_in) {
      std::cerr << "cannot read " << file << "\n";
      return 2;
    }
  }
  std::istream& in = goal.goal.empty() ? static_cast<std::istream&>(file_in) : goal_in;
  const std::string topic = catalog.topic("tasks.submitted");
  kafka::Producer producer(g.settings(), "agentline-submit");
  kafka::ClusterAdmin admin(g.settings());
  auto backlog = [&]() -> std::int64_t {
    // The broker may be restarting: the check waits for it like the producer does.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int tries = 1;; ++tries) {
      try {
        return admin.group_lag("priority-assigner", topic);
      } catch (const std::exception& e) {
        if (std::chrono::steady_clock::now() >= deadline) throw;
        if (tries == 1) std::cerr << "cannot read the backlog yet (" << e.what() << "); retrying for up to 60 s\n";
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  };
  auto hold_back = [&] {
    if (max_backlog <= 0) return;
    bool said = false;
    for (auto lag = backlog(); lag > max_backlog; lag = backlog()) {
      if (!said) std::cerr << "holding back: " << lag << " records of " << topic << " not consumed yet\n";
      said = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  };
  auto result = cli::submit_tasks(in, producer, topic, raw, std::cerr, hold_back);
  std::cout << "submitted " << result.submitted << ", rejected " << result.rejected << ", failed " << result.failed
            << " (to " << catalog.topic("tasks.submitted") << ")\n";
  const int rc = (result.rejected == 0 && result.failed == 0) ? 0 : 1;
  if (wait.seconds <= 0 || result.jobs.empty()) return rc;
  const std::vector<std::string> jobs(result.jobs.begin(), result.jobs.end());
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  int waited;
  if (!wait.gateway.empty()) {
    std::string gateway = wait.gateway;
    while (!gateway.empty() && gateway.back() == '/') gateway.pop_back();
    waited = cli::watch_over_sse(jobs, gateway, config::read_secret(wait.token_file, "AGENTLINE_API_TOKEN"),
                                 wait.seconds, std::cout, tty);
  } else {
    const auto progress_topic = catalog.topic("jobs.progress");
    waited = cli::watch_by_polling(
        jobs, [&] { return cli::read_progress(g.settings(), progress_topic); }, wait.seconds, std::cout,
        tty && jobs.size() == 1);
  }
  return rc != 0 ? rc : waited;
}

// A job is complete when every file reached an end (QA passed or dead-lettered); with
// `delivered`, when every file was delivered, failed delivery, or was dead-lettered.
bool job_complete(const nlohmann::json& state, bool delivered) {
  if (state.value("percent", 0) != 100) return false;
  if (!delivered) return true;
  if (!state.contains("files") || !state["files"].is_object()) return false;
  for (const auto& [path, f] : state["files"].items()) {
    const std::string s = f.value("status", "");
    if (s != "delivered" && s != "dead_lettered" && s != "upload_failed") return false;
  }
  return true;
}

// Prints job progress (with `json`, each job's document on a line of its own, as on
// jobs.progress); with wait_seconds > 0 first waits until every job is complete.
int cmd_status(const GlobalOptions& g, const std::string& job, int wait_seconds, bool files, bool delivered,
               bool json) {
  const auto topic = g.load_catalog().topic("jobs.progress");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  std::map<std::string, nlohmann::json> jobs;
  for (;;) {
    jobs = cli::read_progress(g.settings(), topic);
    if (!job.empty()) {
      auto it = jobs.find(job);
      std::map<std::string, nlohmann::json> one;
      if (it != jobs.end()) one.insert(*it);
      jobs = std::move(one);
    }
    bool complete = !jobs.empty();
    for (const auto& [id, state] : jobs) complete = complete && job_complete(state, delivered);
    if (complete || wait_seconds <= 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (jobs.empty()) {
    (json ? std::cerr : std::cout) << (job.empty() ? "no jobs on " + topic : "no job " + job + " on " + topic) << "\n";
    return job.empty() ? 0 : 1;
  }
  bool complete = true;
  for (const auto& [id, state] : jobs) {
    if (json) {
      std::cout << state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      cli::print_job(state, std::cout, files);
    }
    complete = complete && job_complete(state, delivered);
  }
  return wait_seconds > 0 && !complete ? 3 : 0;
}

int cmd_up(const GlobalOptions& g, std::vector<std::string> services, int base_port, int grace_ms) {
  service::install_stop_signals();
  const fs::path bin = self_dir();
  cli::Supervisor broker_supervisor(std::chrono::seconds(5));
  std::string bootstrap = g.bootstrap_servers;
  if (bootstrap.empty()) {
    fs::path file = fs::path(g.state_dir) / "bootstrap";
    fs::remove(file);
    std::vector<std::string> argv{(bin / "agentline").string(), "broker", "--state-dir", g.state_dir};
    if (!g.catalog.empty()) argv.insert(argv.end(), {"--catalog", g.catalog});
    if (!g.topic_prefix.empty()) argv.insert(argv.end(), {"--topic-prefix", g.topic_prefix});
    broker_supervisor.start({"broker", argv});
    for (int i = 0; i < 100 && !fs::exists(file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(file);
    if (!in || !std::getline(in, bootstrap)) {
      spdlog::error("the embedded broker did not start (no {})", file.string());
      return 1;
    }
  } else {
    cmd_topics_apply(g, 0);
  }
  spdlog::info("bootstrap servers: {}", bootstrap);

  cli::Supervisor supervisor(std::chrono::milliseconds(grace_ms + 5000));
  int port = base_port;
  std::string page_url;
  for (const auto& name : services) {
    fs::path exe = bin / name;
    if (!fs::exists(exe)) {
      spdlog::error("no binary {} next to agentline", exe.string());
      return 2;
    }
    std::vector<std::string> argv{
        exe.string(),          "--bootstrap-servers",    bootstrap,     "--http-port", std::to_string(port++),
        "--shutdown-grace-ms", std::to_string(grace_ms), "--state-dir", g.state_dir};
    if (!g.catalog.empty()) argv.insert(argv.end(), {"--catalog", g.catalog});
    if (!g.topic_prefix.empty()) argv.insert(argv.end(), {"--topic-prefix", g.topic_prefix});
    for (const auto& p : g.kafka) argv.insert(argv.end(), {"-X", p});
    if (name == "gateway") {
      // The gateway reaches the DLQ store through dlq-escalator's HTTP port.
      auto dlq = std::find(services.begin(), services.end(), "dlq-escalator");
      if (dlq != services.end()) {
        argv.insert(argv.end(),
                    {"--dlq-url", "http://127.0.0.1:" + std::to_string(base_port + (dlq - services.begin()))});
      }
      // GET /api/dashboard reads every service's /readyz and /metrics.
      std::string urls;
      for (std::size_t i = 0; i < services.size(); ++i) {
        if (services[i] == "gateway") continue;
        urls += (urls.empty() ? "" : ",") + services[i] + "=http://127.0.0.1:" + std::to_string(base_port + i);
      }
      argv.insert(argv.end(), {"--service-urls", urls});
      page_url = "http://127.0.0.1:" + std::to_string(port - 1) + "/";
    }
    supervisor.start({name, argv});
  }
  spdlog::info("running {} service(s); metrics on ports {}..{}; Ctrl-C stops", services.size(), base_port, port - 1);
  if (!page_url.empty()) spdlog::info("job page: {}", page_url);
  while (!service::stop_requested()) {
    supervisor.tick();
    broker_supervisor.tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  spdlog::info("stopping services");
  supervisor.stop();
  broker_supervisor.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  exit_on_stop_signals();
  CLI::App app("Agentline: a Kafka backbone for AI coding work", "agentline");
  app.set_version_flag("--version", kafka::version_line());
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  GlobalOptions g;
  add_global_options(app, g);

  kafka::EmbeddedBroker::Options broker_options;
  auto* broker = app.add_subcommand(
      "broker",
      "Run the embedded broker with the catalog's topics (SIGUSR1: take it down, SIGUSR2: back up). "
      "librdkafka 2.14's mock cluster, for development and tests: memory only, ~5 MB or 100k messages per "
      "partition (older records dropped), no CreateTopics/DeleteRecords/DescribeConfigs, a fetch with no data "
      "waits the full fetch.wait.max.ms; both group protocols");
  broker->add_option("--brokers", broker_options.brokers, "Number of mock brokers")->capture_default_str();
  // The same variable as the services' --session-timeout-ms: one setting means the same under
  // both group protocols (classic members send theirs; the broker holds the consumer protocol's).
  int group_session_timeout_ms = 10000;
  broker
      ->add_option("--session-timeout-ms", group_session_timeout_ms,
                   "Session timeout of consumer-protocol (KIP-848) groups: a silent member's partitions move after it")
      ->envname("AGENTLINE_SESSION_TIMEOUT_MS")
      ->capture_default_str();
  std::string group_protocols = "classic,consumer";
  broker
      ->add_option("--group-protocols", group_protocols,
                   "Group protocols offered, like Kafka's group.coordinator.rebalance.protocols: 'classic,consumer', "
                   "or 'classic' to behave like a broker before Kafka 4")
      ->check(CLI::IsMember({"classic,consumer", "consumer,classic", "classic"}))
      ->capture_default_str();

  std::vector<std::string> services{"priority-assigner", "dev-fix-worker", "qa-worker", "router",
                                    "outbox-uploader",   "dlq-escalator",  "gateway"};
  int base_port = 9400;
  int grace_ms = 20000;
  auto* up = app.add_subcommand("up", "Start the embedded broker (unless --bootstrap-servers) and the services");
  up->add_option("--services", services, "Services to run")->delimiter(',')->capture_default_str();
  up->add_option("--base-http-port", base_port, "First port for the services' /metrics")->capture_default_str();
  up->add_option("--shutdown-grace-ms", grace_ms, "Drain time given to each service on stop")->capture_default_str();

  std::string file;
  bool raw = false;
  auto* submit = app.add_subcommand(
      "submit", "Validate tasks (JSON Lines), or a goal for the planner, and publish them to tasks.submitted");
  submit->add_option("file", file, "Tasks, one JSON object per line");
  GoalOptions goal;
  submit->add_option("--goal", goal.goal, "A goal to plan instead of a file of tasks (docs/planning.md)");
  submit->add_option("--job-id", goal.job_id, "With --goal: the job's id (default: goal-<random>)");
  submit->add_option("--tenant", goal.tenant, "With --goal: the tenant whose quota the job uses");
  submit->add_option("--language", goal.language, "With --goal: constraint: the project's language");
  submit->add_option("--max-files", goal.max_files, "With --goal: constraint: at most this many files");
  submit->add_option("--layout", goal.layout, "With --goal: constraint: the layout the files follow");
  submit->add_option(
      "--budget-tokens", goal.budget_tokens,
      "With --goal: the job's token budget: its remaining work stops once spent (docs/llm-economics.md)");
  submit->add_option("--budget-usd", goal.budget_usd, "With --goal: the job's cost budget in US dollars");
  submit->add_flag("--raw", raw, "Send lines unvalidated, as they are (to exercise the DLQ)");
  WaitOptions wait;
  submit->add_option("--wait", wait.seconds,
                     "Then follow the jobs for up to this many seconds with a progress bar (exit 3 if unfinished)");
  submit
      ->add_option("--gateway", wait.gateway,
                   "With --wait: the gateway's URL; its event stream drives the bar (else jobs.progress is polled)")
      ->envname("AGENTLINE_GATEWAY_URL");
  submit->add_option("--gateway-token-file", wait.token_file,
                     "With --gateway: file holding its API token (or env AGENTLINE_API_TOKEN)");
  long max_backlog = 200000;
  submit
      ->add_option("--max-backlog", max_backlog,
                   "Wait while priority-assigner has more unconsumed tasks than this (0: never wait)")
      ->capture_default_str();

  auto* topics = app.add_subcommand("topics", "Topic catalog commands");
  topics->require_subcommand(1);
  int replication_factor = 0;
  auto* apply = topics->add_subcommand("apply", "Create the catalog's missing topics");
  apply->add_option("--replication-factor", replication_factor, "Override the catalog's replication factor");
  auto* list = topics->add_subcommand("list", "List the catalog's topics with partitions and message counts");

  std::string group, topic = "tasks.submitted";
  int wait_seconds = 0;
  std::string status_job;
  int status_wait = 0;
  bool status_files = false;
  bool status_delivered = false;
  bool status_json = false;
  auto* status = app.add_subcommand("status", "Job progress from jobs.progress (per job, or one job)");
  status->add_option("job", status_job, "Job id; all jobs when empty");
  status->add_option("--wait", status_wait, "Wait up to this many seconds for the job(s) to complete (exit 3 if not)");
  status->add_flag("--files", status_files, "List every file with its status");
  status->add_flag("--json", status_json, "Each job's document (as on jobs.progress) as one line of JSON");
  status->add_flag("--delivered", status_delivered,
                   "With --wait: wait until every file is delivered (or failed / dead-lettered)");
  std::string budget_job;
  std::int64_t budget_tokens = 0;
  double budget_usd = 0;
  auto* budget =
      app.add_subcommand("budget", "Set or raise a job's budget (tokens, US dollars); then replay its DLQ records");
  budget->add_option("job", budget_job, "Job id")->required();
  budget->add_option("--tokens", budget_tokens, "Tokens the job may spend in all");
  budget->add_option("--cost-usd", budget_usd, "US dollars the job may spend in all");
  auto* lag = app.add_subcommand("lag", "Records a consumer group has not committed yet");
  lag->add_option("--group", group, "Consumer group")->required();
  lag->add_option("--topic", topic, "Logical topic name")->capture_default_str();
  lag->add_option("--wait", wait_seconds, "Wait up to this many seconds for the lag to reach 0");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(g.log_level));
  spdlog::set_pattern("%H:%M:%S.%e agentline %^%l%$ %v");
  try {
    if (*broker) {
      broker_options.group_session_timeout = std::chrono::milliseconds(group_session_timeout_ms);
      broker_options.consumer_group_protocol = group_protocols != "classic";
      return cmd_broker(g, broker_options);
    }
    if (*up) return cmd_up(g, services, base_port, grace_ms);
    if (*submit) return cmd_submit(g, file, raw, max_backlog, wait, goal);
    if (*apply) return cmd_topics_apply(g, replication_factor);
    if (*list) return cmd_topics_list(g);
    if (*status) return cmd_status(g, status_job, status_wait, status_files, status_delivered, status_json);
    if (*lag) return cmd_lag(g, group, topic, wait_seconds);
    if (*budget) return cmd_budget(g, budget_job, budget_tokens, budget_usd);
  } catch (const std::exception& e) {
    std::cerr << "agentline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
