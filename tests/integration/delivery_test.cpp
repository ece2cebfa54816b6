// Delivery and recovery with the real binaries: the whole pipeline into the filesystem target
// and into a loopback webhook that fails at random (500, 429, timeouts), an outbox-uploader
// killed mid-batch, Azure DevOps parent-before-child order, and failed uploads that reach the
// DLQ and come back through `retry-failed`.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "agentline/cache/result_cache.h"
#include "agentline/storage/sqlite.h"
#include "broker_fixture.h"
#include "fake_target.h"

using namespace std::chrono_literals;
using namespace agentline;
using agentline::testing::BrokerFixture;
using agentline::testing::eventually;
using agentline::testing::FakeTarget;
using agentline::testing::http_get;
using agentline::testing::http_request;
using agentline::testing::run_command;
using agentline::testing::ServiceProcess;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::int64_t count_status(const std::string& db, const std::string& status) {
  storage::Database d(db);
  auto s = d.prepare("SELECT COUNT(*) FROM items WHERE status = ?1");
  s.bind(1, status);
  return s.step() ? s.integer(0) : -1;
}

class DeliveryTest : public ::testing::Test {
 protected:
  DeliveryTest() : broker_(kafka::TopicCatalog::load("")) {
    work_ = fs::temp_directory_path() /
            ("agentline-delivery-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(work_);
    fs::create_directories(work_);
  }
  ~DeliveryTest() override {
    if (!HasFailure()) fs::remove_all(work_);
  }

  std::vector<std::string> common(const std::string& name) {
    return {"--bootstrap-servers",  broker_.bootstrap(),
            "--topic-prefix",       broker_.catalog().prefix(),
            "--http-port",          std::to_string(agentline::testing::free_port()),
            "--session-timeout-ms", "6000",
            "--shutdown-grace-ms",  "3000",
            "--state-dir",          (work_ / name).string()};
  }
  std::unique_ptr<ServiceProcess> start(const std::string& binary, std::vector<std::string> extra = {},
                                        const std::string& name = "") {
    auto args = common(name.empty() ? binary : name);
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServiceProcess>(agentline::testing::bin(binary), args);
  }
  std::string topic(const std::string& logical) const { return broker_.catalog().topic(logical); }
  std::string task(const std::string& job, const std::string& id, const std::string& path,
                   json extra = json::object()) const {
    return agentline::testing::dev_task(job, id, path, extra);
  }
  // QA_PASSED records as the router forwards them to deploy.requests (keyed by job).
  std::string qa_passed(const std::string& job, const std::string& id, const std::string& path,
                        const std::string& content, json extra = json::object()) const {
    json payload = {{"path", path}, {"content", content}};
    payload.update(extra);
    return agentline::testing::message("QA_PASSED", job, id, payload, "qp");
  }
  std::string deploy_item(const std::string& job, const std::string& item, const std::string& kind,
                          const std::string& title, const std::string& parent = "") const {
    json payload = {{"item_id", item}, {"kind", kind}, {"title", title}};
    if (!parent.empty()) payload["parent_id"] = parent;
    return agentline::testing::message("DEPLOY_ITEM", job, item, payload, "di");
  }
  std::vector<json> events_of_type(const std::string& type) {
    std::vector<json> out;
    for (const auto& r : broker_.read_available(topic("events"))) {
      auto e = json::parse(r.value, nullptr, false);
      if (e.is_object() && e.value("type", "") == type) out.push_back(e);
    }
    return out;
  }

  static inline int counter_ = 0;
  BrokerFixture broker_;
  fs::path work_;
};

TEST_F(DeliveryTest, EveryTaskReachesTheFilesystemAndAFlakyWebhookExactlyOnceAcrossAKill) {
  FakeTarget hook;
  hook.mode({{"fail_rate", 0.3}, {"seed", 7}, {"timeout_s", 2.5}});
  auto assigner = start("priority-assigner");
  auto worker = start("dev-fix-worker");
  auto qa = start("qa-worker");
  auto router = start("router");
  const std::string fs_db = (work_ / "fs.db").string();
  const std::string wh_db = (work_ / "wh.db").string();
  auto to_fs = start(
      "outbox-uploader",
      {"--target", "filesystem", "--output-root", (work_ / "out").string(), "--db", fs_db, "--group-id", "outbox-fs"},
      "fs");
  const std::vector<std::string> webhook_args{"--target",
                                              "webhook",
                                              "--webhook-url",
                                              hook.url("/hook"),
                                              "--db",
                                              wh_db,
                                              "--group-id",
                                              "outbox-webhook",
                                              "--upload-timeout-ms",
                                              "2000",
                                              "--retry-base-ms",
                                              "100",
                                              "--retry-max-ms",
                                              "1000",
                                              "--max-attempts",
                                              "40",
                                              "--breaker-open-wait-ms",
                                              "500",
                                              "--upload-concurrency",
                                              "4",
                                              "--batch-max",
                                              "8"};
  auto to_hook = start("outbox-uploader", webhook_args, "wh");

  constexpr int kTasks = 40;
  std::vector<kafka::OutgoingRecord> tasks;
  for (int i = 0; i < kTasks; ++i) {
    const std::string id = "d-" + std::to_string(100 + i);
    tasks.push_back({topic("tasks.submitted"), id, task("deliver", id, "src/mod_" + std::to_string(i) + ".py")});
  }
  broker_.produce_batch(tasks);

  // Kill the webhook uploader while a batch is in flight: the target has stored items whose
  // answers are held back, so the outbox still has them in_flight.
  ASSERT_TRUE(eventually([&] { return hook.stats().value("created", 0) >= 12; }, 90s)) << to_hook->log();
  hook.mode({{"latency_ms", 5000}, {"fail_rate", 0.0}});
  ASSERT_TRUE(eventually([&] { return hook.stats().value("in_latency", 0) >= 2; }, 30s)) << to_hook->log();
  to_hook->signal(SIGKILL);
  ASSERT_TRUE(to_hook->wait(5s).has_value());
  const auto in_flight_at_kill = count_status(wh_db, "in_flight");
  EXPECT_GE(in_flight_at_kill, 1) << "the kill did not land mid-batch";
  const int created_at_kill = hook.stats().value("created", 0);
  hook.mode({{"latency_ms", 0}, {"fail_rate", 0.3}});
  to_hook = start("outbox-uploader", webhook_args, "wh");

  const fs::path out = work_ / "out" / "deliver";
  auto files_delivered = [&] {
    int n = 0;
    for (int i = 0; i < kTasks; ++i) n += fs::exists(out / "src" / ("mod_" + std::to_string(i) + ".py")) ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(
      eventually([&] { return hook.stats().value("created", 0) >= kTasks && files_delivered() == kTasks; }, 150s))
      << "webhook has " << hook.stats().value("created", 0) << ", filesystem " << files_delivered() << "\n"
      << to_hook->log();
  ASSERT_TRUE(eventually(
      [&] { return count_status(wh_db, "uploaded") == kTasks && count_status(fs_db, "uploaded") == kTasks; }, 30s));
  auto groups = agentline::testing::kPipelineInputs;
  groups.erase("dlq-escalator");
  groups.erase("outbox-uploader");
  groups["outbox-fs"] = groups["outbox-webhook"] = {"deploy.requests"};
  ASSERT_TRUE(broker_.settled(groups)) << "anything late would have been produced once this holds";

  // Exactly once at both targets, with the content QA passed.
  std::map<std::string, std::string> passed;  // task id -> content
  for (const auto& r : broker_.read_available(topic("deploy.requests"))) {
    auto e = json::parse(r.value);
    passed[e["task_id"]] = e["payload"]["content"];
  }
  ASSERT_EQ(passed.size(), static_cast<std::size_t>(kTasks));
  const auto s = hook.stats();
  EXPECT_EQ(s["created"].get<int>(), kTasks);
  EXPECT_EQ(s["items"].size(), static_cast<std::size_t>(kTasks));
  for (const auto& [key, creates] : s["creates_per_key"].items())
    EXPECT_EQ(creates.get<int>(), 1) << key << " created twice";
  for (const auto& [key, stored] : s["items"].items()) {
    const std::string task_id = stored["item"]["task_id"];
    EXPECT_EQ(key, "deliver/" + task_id);
    EXPECT_EQ(stored["item"]["content"].get<std::string>(), passed[task_id]) << key;
    EXPECT_EQ(stored["item"]["content_sha256"].get<std::string>(), cache::sha256_hex(passed[task_id]));
  }
  for (int i = 0; i < kTasks; ++i) {
    const std::string id = "d-" + std::to_string(100 + i);
    EXPECT_EQ(read_file(out / "src" / ("mod_" + std::to_string(i) + ".py")), passed[id]) << id;
  }
  int stray = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out))
    stray += entry.path().filename().string().find(".tmp-") != std::string::npos;
  EXPECT_EQ(stray, 0) << "temporary files left in the output root";
  // The webhook failed in every way, and repeats were absorbed by the idempotency key.
  EXPECT_GT(s["failures"].value("500", 0), 0);
  EXPECT_GT(s["failures"].value("429", 0), 0);
  EXPECT_GT(s["failures"].value("timeout", 0), 0);
  EXPECT_GT(s["posts"].get<int>(), kTasks);
  std::cout << "webhook: " << s["posts"] << " POSTs, " << s["created"] << " created (" << created_at_kill
            << " before the kill, " << in_flight_at_kill << " in flight at the kill), failures " << s["failures"].dump()
            << "\n";
  // One UPLOADED per item and target; nothing dead-lettered.
  std::set<std::string> ids;
  for (const auto& e : events_of_type("UPLOADED")) ids.insert(e["id"].get<std::string>());
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(2 * kTasks));
  EXPECT_EQ(broker_.read_available(topic("dlq")).size(), 0u);
}

TEST_F(DeliveryTest, AzureDevOpsGetsParentsBeforeChildrenAndNoDuplicateOfAnExistingItem) {
  FakeTarget ado("secret-pat");
  const fs::path pat = work_ / "pat";
  std::ofstream(pat) << "secret-pat\n";
  // A work item made by an earlier run that crashed before recording it: found, not re-created.
  ado.seed_ado(std::string("agentline-") + cache::sha256_hex("plan/f-3").substr(0, 24), "lib/three.py");
  auto uploader =
      start("outbox-uploader", {"--target", "azure-devops", "--ado-org-url", ado.url("/acme"), "--ado-project", "shop",
                                "--ado-pat-file", pat.string(), "--db", (work_ / "ado.db").string()});
  // Children first: they must wait for the story, which waits for the epic.
  broker_.produce(topic("deploy.requests"), "plan",
                  qa_passed("plan", "f-1", "lib/one.py", "print(1)\n", {{"parent_id", "story-1"}}));
  broker_.produce(topic("deploy.requests"), "plan",
                  qa_passed("plan", "f-2", "lib/two.py", "print(2)\n", {{"parent_id", "story-1"}}));
  broker_.produce(topic("deploy.requests"), "plan",
                  qa_passed("plan", "f-3", "lib/three.py", "print(3)\n", {{"parent_id", "story-1"}}));
  broker_.produce(topic("deploy.requests"), "plan",
                  deploy_item("plan", "story-1", "story", "Checkout works", "epic-1"));
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(ado.stats().value("ado_creates", -1), 0) << "something was created before its parent existed";
  broker_.produce(topic("deploy.requests"), "plan", deploy_item("plan", "epic-1", "epic", "Shop v2"));
  ASSERT_TRUE(eventually([&] { return ado.stats().value("ado_creates", 0) >= 4; }, 30s)) << uploader->log();
  ASSERT_TRUE(eventually([&] { return events_of_type("UPLOADED").size() >= 5; }, 20s)) << uploader->log();

  const auto items = ado.stats()["ado"];
  ASSERT_EQ(items.size(), 5u);  // the seeded one + epic, story, two files
  std::map<std::string, json> by_title;
  for (const auto& w : items) by_title[w["fields"]["System.Title"].get<std::string>()] = w;
  const auto& epic = by_title.at("Shop v2");
  const auto& story = by_title.at("Checkout works");
  EXPECT_EQ(epic["type"], "Epic");
  EXPECT_EQ(story["type"], "User Story");
  EXPECT_LT(epic["id"].get<int>(), story["id"].get<int>());
  ASSERT_EQ(story["relations"].size(), 1u);
  EXPECT_EQ(story["relations"][0]["rel"], "System.LinkTypes.Hierarchy-Reverse");
  EXPECT_EQ(story["relations"][0]["url"],
            ado.url("/acme") + "/_apis/wit/workItems/" + std::to_string(epic["id"].get<int>()));
  for (const std::string file : {"lib/one.py", "lib/two.py"}) {
    const auto& w = by_title.at(file);
    EXPECT_EQ(w["type"], "Task");
    EXPECT_GT(w["id"].get<int>(), story["id"].get<int>());
    ASSERT_EQ(w["relations"].size(), 1u);
    EXPECT_EQ(w["relations"][0]["url"],
              ado.url("/acme") + "/_apis/wit/workItems/" + std::to_string(story["id"].get<int>()));
    EXPECT_NE(w["fields"]["System.Description"].get<std::string>().find("print("), std::string::npos);
  }
  // lib/three.py was already there (seeded as id 1000): linked to it, not created again.
  for (const auto& e : events_of_type("UPLOADED")) {
    if (e["task_id"] == "f-3") {
      EXPECT_EQ(e["payload"]["remote_id"], "1000");
    }
  }
}

TEST_F(DeliveryTest, RefusedUploadsAreDeadLetteredAndRetryFailedDeliversThem) {
  FakeTarget hook;
  hook.mode({{"status", 422}});
  const std::string db = (work_ / "outbox.db").string();
  auto uploader = start("outbox-uploader", {"--target", "webhook", "--webhook-url", hook.url("/hook"), "--db", db,
                                            "--retry-base-ms", "100"});
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "r-" + std::to_string(i);
    broker_.produce(topic("deploy.requests"), "refused",
                    qa_passed("refused", id, "f" + std::to_string(i) + ".py", "x = 1\n"));
  }
  ASSERT_TRUE(eventually([&] { return events_of_type("UPLOAD_FAILED").size() >= 3; }, 30s)) << uploader->log();
  // A 422 is not worth retrying: one attempt each, then the DLQ with the reason.
  EXPECT_EQ(hook.stats().value("posts", 0), 3);
  const auto dlq = broker_.read(topic("dlq"), 3, 20s);
  ASSERT_EQ(dlq.size(), 3u);
  for (const auto& r : dlq) {
    EXPECT_EQ(r.header("agentline-error-class").value_or(""), "upload_failed");
    EXPECT_EQ(r.header("agentline-original-topic").value_or(""), topic("deploy.requests"));
    EXPECT_NE(std::string(r.header("agentline-error-message").value_or("")).find("HTTP 422"), std::string::npos);
  }
  std::string out;
  ASSERT_EQ(run_command(agentline::testing::bin("outbox-uploader") + " status --job refused --json --db " + db, &out),
            0);
  auto summary = json::parse(out);
  EXPECT_EQ(summary["by_status"]["failed"], 3);
  EXPECT_EQ(summary["failed"].size(), 3u);

  // The target is fixed: the recovery command makes them pending again; nothing is generated again.
  hook.mode({{"status", 0}});
  ASSERT_EQ(run_command(agentline::testing::bin("outbox-uploader") + " retry-failed --job refused --db " + db, &out),
            0);
  EXPECT_NE(out.find("3 failed item(s) pending again"), std::string::npos) << out;
  ASSERT_TRUE(eventually([&] { return hook.stats().value("created", 0) == 3; }, 30s)) << uploader->log();
  ASSERT_TRUE(eventually([&] { return events_of_type("UPLOADED").size() == 3; }, 20s));
  ASSERT_EQ(run_command(agentline::testing::bin("outbox-uploader") + " status --job refused --json --db " + db, &out),
            0);
  EXPECT_EQ(json::parse(out)["by_status"]["uploaded"], 3);
}

}  // namespace

namespace {

TEST_F(DeliveryTest, ScaleInWithTheTargetDownStrandsNothingEveryItemIsDeliveredOnce) {
  // Three replicas stage 24 items while the target answers 503 (each holds the items of its
  // partitions in its own SQLite); two are stopped as KEDA's scale-in would (SIGTERM). They
  // hand what they staged back to its partition; the survivor stages it. The target comes
  // back: every item is delivered exactly once.
  FakeTarget hook;
  hook.mode({{"status", 503}});
  std::vector<std::unique_ptr<ServiceProcess>> replicas;
  std::vector<std::string> dbs;
  for (int i = 0; i < 3; ++i) {
    dbs.push_back((work_ / ("outbox-" + std::to_string(i) + ".db")).string());
    replicas.push_back(
        start("outbox-uploader",
              {"--target", "webhook", "--webhook-url", hook.url("/hook"), "--db", dbs.back(), "--max-attempts", "1000",
               "--retry-base-ms", "200", "--retry-max-ms", "500", "--breaker-open-wait-ms", "500"},
              "outbox-" + std::to_string(i)));
  }
  constexpr int kItems = 24;
  // Wait until each replica holds partitions, so the items spread over all three.
  auto staged = [&] {
    std::int64_t n = 0;
    for (const auto& db : dbs) {
      if (fs::exists(db)) n += count_status(db, "pending") + count_status(db, "in_flight");
    }
    return n;
  };
  const std::regex assigned("assigned [1-9][0-9]* partition");
  ASSERT_TRUE(eventually(
      [&] {
        return std::all_of(replicas.begin(), replicas.end(),
                           [&](const auto& r) { return std::regex_search(r->log(), assigned); });
      },
      60s))
      << "every replica holds partitions";
  for (int i = 0; i < kItems; ++i) {
    const std::string job = "scale-" + std::to_string(i);
    broker_.produce(topic("deploy.requests"), job, qa_passed(job, "s-" + std::to_string(i), "f.py", "x = 1\n"));
  }
  ASSERT_TRUE(eventually([&] { return staged() == kItems; }, 60s)) << staged();
  int holding = 0;
  for (const auto& db : dbs) holding += count_status(db, "pending") + count_status(db, "in_flight") > 0 ? 1 : 0;
  EXPECT_GE(holding, 2) << "the items are spread over the replicas";
  const auto before = count_status(dbs[0], "pending") + count_status(dbs[0], "in_flight");
  for (int i = 1; i < 3; ++i) {
    replicas[i]->signal(SIGTERM);
    ASSERT_EQ(replicas[i]->wait(agentline::testing::scaled(60s)), 0) << replicas[i]->log();
  }
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(count_status(dbs[i], "pending") + count_status(dbs[i], "in_flight"), 0)
        << "a stopped replica keeps nothing it staged\n"
        << replicas[i]->log();
  }
  ASSERT_TRUE(
      eventually([&] { return count_status(dbs[0], "pending") + count_status(dbs[0], "in_flight") == kItems; }, 60s))
      << "the survivor staged what the others handed over (it held " << before << ")\n"
      << replicas[0]->log();
  hook.mode({{"status", 0}});
  ASSERT_TRUE(eventually([&] { return hook.stats().value("created", 0) == kItems; }, 60s))
      << hook.stats().dump() << "\n"
      << replicas[0]->log();
  ASSERT_TRUE(broker_.settled({{"outbox-uploader", {"deploy.requests"}}}));
  const auto stats = hook.stats();
  EXPECT_EQ(stats.value("created", 0), kItems);
  for (const auto& [key, n] : stats["creates_per_key"].items()) EXPECT_EQ(n, 1) << key;
  EXPECT_EQ(count_status(dbs[0], "uploaded"), kItems);
}

}  // namespace

namespace {

TEST_F(DeliveryTest, AChildWhoseParentNeverComesAndASecondTaskOnAPathAreDeadLetteredWithTheirReasons) {
  // The live uploader, not the store alone: a child waits --parent-wait for a parent that is
  // never sent, then fails (an UPLOAD_FAILED event and its DLQ record, parent_missing); a
  // second task of the same job writing an uploaded file's path is refused as duplicate_path
  // and the first file stays as it was.
  const fs::path target = work_ / "repo";
  auto uploader = start("outbox-uploader", {"--target", "filesystem", "--output-root", target.string(), "--db",
                                            (work_ / "outbox.db").string(), "--parent-wait", "2s"});
  broker_.produce(topic("deploy.requests"), "orphans",
                  qa_passed("orphans", "child", "lib/child.py", "x = 1\n", {{"parent_id", "story-never-sent"}}));
  broker_.produce(topic("deploy.requests"), "paths", qa_passed("paths", "first", "app/main.py", "print('first')\n"));
  ASSERT_TRUE(eventually([&] { return fs::exists(target / "paths" / "app" / "main.py"); }, 30s)) << uploader->log();
  broker_.produce(topic("deploy.requests"), "paths", qa_passed("paths", "second", "app/main.py", "print('second')\n"));

  std::map<std::string, kafka::InboundRecord> dead;
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& r : broker_.read_available(topic("dlq"))) {
          dead[std::string(r.header("agentline-error-class").value_or(""))] = r;
        }
        return dead.count("parent_missing") && dead.count("duplicate_path");
      },
      60s))
      << uploader->log();
  const auto message = [](const kafka::InboundRecord& r) {
    return std::string(r.header("agentline-error-message").value_or(""));
  };
  EXPECT_NE(message(dead["parent_missing"]).find("story-never-sent"), std::string::npos)
      << message(dead["parent_missing"]);
  EXPECT_EQ(json::parse(dead["parent_missing"].value)["task_id"], "child");
  EXPECT_NE(message(dead["duplicate_path"]).find("from task first"), std::string::npos)
      << message(dead["duplicate_path"]);
  EXPECT_EQ(json::parse(dead["duplicate_path"].value)["task_id"], "second");
  EXPECT_EQ(read_file(target / "paths" / "app" / "main.py"), "print('first')\n");
  EXPECT_FALSE(fs::exists(target / "orphans" / "lib" / "child.py"));
  const auto failed = events_of_type("UPLOAD_FAILED");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["task_id"], "child");
  EXPECT_EQ(events_of_type("UPLOADED").size(), 1u);
}

}  // namespace
