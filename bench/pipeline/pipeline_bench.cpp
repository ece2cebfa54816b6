// The measuring side of bench/pipeline/run.py: fills topics with valid messages, runs the bare
// librdkafka consume->produce loop the router is compared with, waits for a group to drain,
// measures retry-tier lateness through the real consumer runtime, and reads submit-to-delivery
// latencies off the topics. Prints one JSON object per command on stdout.
//
//   pipeline_bench fill    --bootstrap B --topic T --count N --size S --kind event|passed|task [--priority P] [--job J]
//                          [--jobs-of K (K tasks per job: J-0, J-1, ...)] [--rate R per second] [--first I]
//   pipeline_bench bare    --bootstrap B --in T --out T --group G --count N
//   pipeline_bench chain   --bootstrap B --topic T0 ... --topic TN --count N --rate R [--size S] [--group G]
//                          (the end-to-end latency's baseline: N bare hops, paced)
//   pipeline_bench drain   --bootstrap B --group G --topic T [--topic T2 ...] --count N [--timeout-s S]
//   pipeline_bench span    --bootstrap B --topic T   (write rate from the records' CreateTime)
//   pipeline_bench retry   --bootstrap B --prefix P --count N
//   pipeline_bench latency --bootstrap B --prefix P --job J --count N [--timeout-s S]   (J: a job id prefix)
//   pipeline_bench wait    --bootstrap B --prefix P --topic T --count N [--timeout-s S]  (critical tasks' wait)
//                          [--tenant T --priority P --job J --id-prefix I --interval-ms M]  (one tenant's beside a
//                          flood)
//   pipeline_bench summary --bootstrap B --prefix P --job J   (the job's last summary on jobs.progress)
//   fill also takes [--tenant T] [--budget-tokens N] for tasks.
//   pipeline_bench spawn   --count N --threads T --argv A [--argv A ...]   (qa-worker's baseline: starting a
//                          check, {dir} in A: the run's work directory)
//   pipeline_bench files   --count N --threads T --dir D --size S   (outbox-uploader's baseline: durable writes)
#include <fcntl.h>
#include <grp.h>
#include <librdkafka/rdkafka.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agentline/events/timestamps.h"
#include "agentline/kafka/admin.h"
#include "agentline/kafka/consumer_runtime.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_catalog.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/observability/health.h"
#include "kafka/handles.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace ak = agentline::kafka;

namespace {

struct Args {
  std::map<std::string, std::vector<std::string>> values;
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = values.find(k);
    return it == values.end() || it->second.empty() ? def : it->second.back();
  }
  long long num(const std::string& k, long long def) const { return std::stoll(get(k, std::to_string(def))); }
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) a.values[std::string(argv[i]).substr(2)].push_back(argv[i + 1]);
  return a;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

std::string pad(std::size_t size, std::size_t used) {
  const std::size_t n = size > used ? size - used : 1;
  std::string s;
  s.reserve(n);
  for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('a' + (i * 7) % 26);
  return s;
}

// A FILE_COMPLETED event (what the router handles most) or a DEV_TASK, of about `size` bytes.
// A task may name its tenant and carry its job's budget in tokens (0: none).
std::string message(const std::string& kind, const std::string& id, int i, std::size_t size, const std::string& job,
                    const std::string& priority, const std::string& tenant = "", long long budget_tokens = 0) {
  // "passed": a QA_PASSED (what outbox-uploader delivers), shaped as a FILE_COMPLETED.
  const bool file = kind == "event" || kind == "passed";
  json m = {{"id", (kind == "event"    ? "fc-"
                    : kind == "passed" ? "qp-"
                                       : "m-") +
                       id + "-0"},
            {"task_id", id},
            {"job_id", job},
            {"type", kind == "event"    ? "FILE_COMPLETED"
                     : kind == "passed" ? "QA_PASSED"
                                        : "DEV_TASK"},
            {"created_at", agentline::events::now_iso8601()}};
  if (file) {
    m["payload"] = {{"path", "src/f" + std::to_string(i) + ".py"}, {"content", ""}, {"fix_attempt", 0}};
  } else {
    m["payload"] = {{"path", "src/f" + std::to_string(i) + ".py"}, {"description", ""}};
    if (!priority.empty()) m["payload"]["priority"] = priority;
    if (!tenant.empty()) m["payload"]["tenant"] = tenant;
    if (budget_tokens > 0) m["payload"]["budget"] = {{"tokens", budget_tokens}};
  }
  const std::size_t used = m.dump().size();
  m["payload"][file ? "content" : "description"] = "# " + pad(size, used + 2);
  return m.dump();
}

int fill(const Args& a) {
  ak::Producer producer(ak::KafkaSettings{a.get("bootstrap"), {}, ""}, "pipeline-bench");
  const auto count = a.num("count", 1000);
  const auto size = static_cast<std::size_t>(a.num("size", 1024));
  const auto jobs_of = a.num("jobs-of", 0);
  const auto first = a.num("first", 0);
  const double rate = std::stod(a.get("rate", "0"));
  const std::string prefix = a.get("id-prefix", "b-");
  std::atomic<long long> failed{0};
  const auto t0 = Clock::now();
  for (long long i = 0; i < count; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate)));
    const std::string job =
        jobs_of > 0 ? a.get("job", "bench") + "-" + std::to_string(i / jobs_of) : a.get("job", "bench");
    ak::OutgoingRecord r;
    r.topic = a.get("topic");
    r.key = prefix + std::to_string(first + i);
    r.value = message(a.get("kind", "event"), r.key, static_cast<int>(first + i), size, job, a.get("priority"),
                      a.get("tenant"), a.num("budget-tokens", 0));
    r.headers.push_back({"content-type", "application/json"});
    producer.send(r, [&](const ak::DeliveryReport& d) { failed += d.ok ? 0 : 1; });
  }
  producer.flush(std::chrono::minutes(5));
  std::cout << json{{"produced", count},
                    {"failed", failed.load()},
                    {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()}}
                   .dump()
            << std::endl;
  return failed ? 1 : 0;
}

// consume -> produce (acks=all, idempotent, as the services) -> commit what was acknowledged:
// `count` records, or (count 0) until `stop`. `assigned`, when given, is counted up once the
// consumer has its partitions.
struct CopyStats {
  long long done = 0;
  double seconds = 0;  // from the first record handled to the last commit
  double cpu = 0;      // the process's, over the same span
};

// A producer with the services' settings (linger 5 ms, acks=all, idempotent).
ak::detail::KafkaPtr services_producer(const std::string& bootstrap) {
  using namespace ak::detail;
  return make_client(RD_KAFKA_PRODUCER, make_conf(ak::KafkaSettings{bootstrap, {}, ""}, {{"linger.ms", "5"}},
                                                  {{"enable.idempotence", "true"}, {"acks", "all"}}));
}

// A consumer of `topic` in `group`, from the earliest offset, committing by hand, with the
// consumer runtime's fetch settings (fetch.wait.max.ms 100), so only the loops differ.
ak::detail::KafkaPtr subscribed_consumer(const std::string& bootstrap, const std::string& topic,
                                         const std::string& group) {
  using namespace ak::detail;
  auto consumer =
      make_client(RD_KAFKA_CONSUMER, make_conf(ak::KafkaSettings{bootstrap, {}, ""},
                                               {{"auto.offset.reset", "earliest"}, {"fetch.wait.max.ms", "100"}},
                                               {{"group.id", group}, {"enable.auto.commit", "false"}}));
  rd_kafka_poll_set_consumer(consumer.get());
  PartitionListPtr subs(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(subs.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer.get(), subs.get());
  return consumer;
}

CopyStats copy_loop(const std::string& bootstrap, const std::string& in, const std::string& out,
                    const std::string& group, long long count, const std::atomic<bool>& stop,
                    std::atomic<int>* assigned = nullptr) {
  using namespace ak::detail;
  auto producer = services_producer(bootstrap);
  auto consumer = subscribed_consumer(bootstrap, in, group);
  CopyStats stats;
  Clock::time_point start{};
  auto last_commit = Clock::now();
  bool has_partitions = false;
  while (count > 0 ? stats.done < count : !stop.load()) {
    MessagePtr m(rd_kafka_consumer_poll(consumer.get(), 100));
    rd_kafka_poll(producer.get(), 0);
    if (assigned && !has_partitions) {
      rd_kafka_topic_partition_list_t* mine = nullptr;
      if (rd_kafka_assignment(consumer.get(), &mine) == RD_KAFKA_RESP_ERR_NO_ERROR && mine && mine->cnt > 0) {
        has_partitions = true;
        ++*assigned;
      }
      if (mine) rd_kafka_topic_partition_list_destroy(mine);
    }
    if (!m || m->err) continue;
    if (stats.done == 0) {
      start = Clock::now();
      stats.cpu = -cpu_seconds();
    }
    while (rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(out.c_str()), RD_KAFKA_V_KEY(m->key, m->key_len),
                             RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer.get(), 10);
    }
    ++stats.done;
    if (Clock::now() - last_commit > std::chrono::seconds(1) || stats.done == count) {
      // Offsets move only past records whose copies Kafka acknowledged.
      rd_kafka_flush(producer.get(), 30000);
      rd_kafka_commit(consumer.get(), nullptr, 1);
      last_commit = Clock::now();
    }
  }
  rd_kafka_flush(producer.get(), 30000);
  rd_kafka_commit(consumer.get(), nullptr, 0);
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stats.cpu += cpu_seconds();
  rd_kafka_consumer_close(consumer.get());
  return stats;
}

int bare(const Args& a) {
  const std::atomic<bool> never{false};
  const auto s = copy_loop(a.get("bootstrap"), a.get("in"), a.get("out"), a.get("group"), a.num("count", 1000), never);
  std::cout << json{{"messages", s.done},
                    {"seconds", s.seconds},
                    {"msgs_per_s", s.done / s.seconds},
                    {"cpu_seconds", s.cpu},
                    {"cpu_us_per_msg", s.cpu * 1e6 / s.done}}
                   .dump()
            << std::endl;
  return 0;
}

// The end-to-end latency's baseline: `--topic` T0 .. TN, a bare copy loop from each to the next
// (threads, each with its consumer group and producer, as `bare`), fed `count` records of `size`
// bytes at `rate` per second once every loop has its partitions. A record's latency: its last
// copy's CreateTime less its own, as `latency` measures a task (submitted to UPLOADED).
int chain(const Args& a) {
  using namespace ak::detail;
  const auto topics = a.values.at("topic");
  const std::string bootstrap = a.get("bootstrap");
  const auto count = a.num("count", 1000);
  const double rate = std::stod(a.get("rate", "100"));
  const auto size = static_cast<std::size_t>(a.num("size", 400));
  const std::string group = a.get("group", "chain");
  std::atomic<bool> stop{false};
  std::atomic<int> assigned{0};
  std::vector<std::thread> hops;
  for (std::size_t i = 0; i + 1 < topics.size(); ++i) {
    hops.emplace_back([&, i] {
      copy_loop(bootstrap, topics[i], topics[i + 1], group + "-" + std::to_string(i), 0, stop, &assigned);
    });
  }
  auto reader = subscribed_consumer(bootstrap, topics.back(), group + "-reader");
  const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout-s", 300));
  while (assigned.load() < static_cast<int>(hops.size()) && Clock::now() < deadline) {
    MessagePtr m(rd_kafka_consumer_poll(reader.get(), 100));
  }
  // Sent from a thread of its own, paced as `fill --rate` paces tasks.
  std::vector<std::int64_t> sent(static_cast<std::size_t>(count), 0);
  std::thread feeder([&] {
    auto producer = services_producer(bootstrap);
    const std::string value = pad(size, 0);
    const auto t0 = Clock::now();
    for (long long i = 0; i < count; ++i) {
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate)));
      const std::string key = std::to_string(i);
      const auto now =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      sent[static_cast<std::size_t>(i)] = now;
      rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topics.front().c_str()),
                        RD_KAFKA_V_KEY(key.data(), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(now), RD_KAFKA_V_END);
      rd_kafka_poll(producer.get(), 0);
    }
    rd_kafka_flush(producer.get(), 30000);
  });
  std::vector<double> ms;
  std::vector<bool> seen(static_cast<std::size_t>(count), false);
  while (static_cast<long long>(ms.size()) < count && Clock::now() < deadline) {
    MessagePtr m(rd_kafka_consumer_poll(reader.get(), 100));
    if (!m || m->err || !m->key) continue;
    const auto i = std::stoll(std::string(static_cast<const char*>(m->key), m->key_len));
    if (i < 0 || i >= count || seen[static_cast<std::size_t>(i)]) continue;
    seen[static_cast<std::size_t>(i)] = true;
    ms.push_back(static_cast<double>(rd_kafka_message_timestamp(m.get(), nullptr) - sent[static_cast<std::size_t>(i)]));
  }
  feeder.join();
  stop = true;
  for (auto& t : hops) t.join();
  rd_kafka_consumer_close(reader.get());
  std::cout << json{{"hops", hops.size()},
                    {"sent", count},
                    {"matched", ms.size()},
                    {"p50_ms", percentile(ms, 0.5)},
                    {"p95_ms", percentile(ms, 0.95)},
                    {"p99_ms", percentile(ms, 0.99)}}
                   .dump()
            << std::endl;
  return static_cast<long long>(ms.size()) >= count ? 0 : 1;
}

// Waits until `group` has committed `count` records over the given topics (from 0).
int drain(const Args& a) {
  ak::ClusterAdmin admin(ak::KafkaSettings{a.get("bootstrap"), {}, ""});
  const auto count = a.num("count", 1000);
  const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout-s", 600));
  const auto t0 = Clock::now();
  auto topics = a.values.at("topic");
  for (;;) {
    std::int64_t end = 0, lag = 0;
    for (const auto& o : admin.offsets(topics)) end += o.high_watermark_sum;
    for (const auto& t : topics) lag += admin.group_lag(a.get("group"), t);
    if (end - lag >= count || Clock::now() > deadline) {
      std::cout << json{{"committed", end - lag},
                        {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()},
                        {"end_ms", agentline::events::now_ms()},
                        {"timed_out", end - lag < count}}
                       .dump()
                << std::endl;
      return end - lag >= count ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The rate at which records were written to a topic, from their CreateTime stamps (set by the
// producer as it sends): (N - 1) / (last - first). The same measure for the bare loop's output
// and the router's, so neither includes start-up, the first fetch or the last commit.
int span(const Args& a) {
  ak::TopicFollower follower(ak::KafkaSettings{a.get("bootstrap"), {}, ""}, a.get("topic"), "span-bench");
  std::int64_t first = std::numeric_limits<std::int64_t>::max(), last = 0;
  long long n = 0;
  follower.catch_up(
      [&](const ak::InboundRecord& r) {
        first = std::min(first, r.timestamp_ms);
        last = std::max(last, r.timestamp_ms);
        ++n;
      },
      std::chrono::seconds(60));
  const double seconds = std::max<std::int64_t>(1, last - first) / 1000.0;
  std::cout << json{{"records", n},
                    {"span_seconds", seconds},
                    {"msgs_per_s", n > 1 ? (n - 1) / seconds : 0.0},
                    {"first_ms", first},
                    {"last_ms", last}}
                   .dump()
            << std::endl;
  return 0;
}

// How late retried records run after their due time: the real runtime, a handler that fails
// each record's first attempt (transient) and notes `now - agentline-retry-due` on the retry.
int retry(const Args& a) {
  auto catalog = ak::TopicCatalog::load("");
  catalog.set_prefix(a.get("prefix", "agentline."));
  const std::string topic = catalog.topic("tasks.low");
  const auto count = a.num("count", 200);
  {
    ak::Producer p(ak::KafkaSettings{a.get("bootstrap"), {}, ""}, "retry-bench");
    for (long long i = 0; i < count; ++i) {
      p.send({topic, "r-" + std::to_string(i), "{}", {}}, [](const ak::DeliveryReport&) {});
      if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // due times spread out
    }
    p.flush(std::chrono::seconds(30));
  }
  ak::ConsumerOptions options;
  options.service = "retry-bench";
  options.group_id = "dev-fix-worker";  // a catalog group, so its retry tiers exist
  options.topics = {topic};
  options.max_in_flight = 16;
  auto producer = std::make_shared<ak::Producer>(ak::KafkaSettings{a.get("bootstrap"), {}, ""}, "retry-bench");
  auto registry = std::make_shared<prometheus::Registry>();
  auto health = std::make_shared<agentline::observability::HealthState>();
  std::map<std::string, std::string> props;
  if (const char* debug = std::getenv("AGENTLINE_BENCH_RDKAFKA_DEBUG")) {
    props["debug"] = debug;
    spdlog::set_level(spdlog::level::debug);
  }
  ak::ConsumerRuntime runtime(ak::KafkaSettings{a.get("bootstrap"), props, ""}, options, catalog, producer, registry,
                              health);
  std::mutex mu;
  std::vector<double> late_ms;
  std::thread stopper([&] {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (static_cast<long long>(late_ms.size()) >= count || Clock::now() > deadline) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    runtime.request_stop();
  });
  runtime.run([&](const ak::InboundRecord& r, ak::Emitter&) -> std::optional<ak::Failure> {
    const auto due = ak::retry_due_ms(r);
    if (due == 0) return ak::Failure::transient("bench", "first attempt fails");
    std::lock_guard lock(mu);
    late_ms.push_back(static_cast<double>(agentline::events::now_ms() - due));
    spdlog::debug("retried {}[{}]@{} late {} ms", r.topic, r.partition, r.offset, late_ms.back());
    return std::nullopt;
  });
  stopper.join();
  std::cout << json{{"retried", late_ms.size()},
                    {"late_ms_p50", percentile(late_ms, 0.5)},
                    {"late_ms_p90", percentile(late_ms, 0.9)},
                    {"late_ms_p95", percentile(late_ms, 0.95)},
                    {"late_ms_p99", percentile(late_ms, 0.99)},
                    {"late_ms_max", percentile(late_ms, 1.0)},
                    {"delay_ms", catalog.retry_tiers("dev-fix-worker").at(0).delay.count()}}
                   .dump()
            << std::endl;
  return 0;
}

// Submit-to-delivery latency: tasks.submitted record times against UPLOADED event times.
int latency(const Args& a) {
  auto catalog = ak::TopicCatalog::load("");
  catalog.set_prefix(a.get("prefix", "agentline."));
  const ak::KafkaSettings settings{a.get("bootstrap"), {}, ""};
  const auto count = a.num("count", 100);
  const std::string job = a.get("job", "bench");
  std::map<std::string, std::int64_t> submitted;
  ak::TopicFollower tasks(settings, catalog.topic("tasks.submitted"), "latency-bench");
  tasks.catch_up(
      [&](const ak::InboundRecord& r) {
        auto m = json::parse(r.value, nullptr, false);
        if (m.is_object() && m.value("job_id", "").rfind(job, 0) == 0)
          submitted[m.value("task_id", "")] = r.timestamp_ms;
      },
      std::chrono::seconds(60));
  // Each task's first record at every step, by CreateTime: the steps a task passes in order.
  std::map<std::string, std::map<std::string, std::int64_t>> at;  // step -> task -> ms
  const auto note = [&](const std::string& step, const ak::InboundRecord& r) {
    auto m = json::parse(r.value, nullptr, false);
    if (!m.is_object() || m.value("job_id", "").rfind(job, 0) != 0) return;
    const std::string type = m.value("type", "");
    const std::string key = step == "events" ? type : step;
    if (step == "events" && type != "FILE_COMPLETED" && type != "QA_PASSED" && type != "UPLOADED") return;
    at[key].emplace(m.value("task_id", ""), r.timestamp_ms);
  };
  auto& delivered = at["UPLOADED"];
  const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout-s", 300));
  while (static_cast<long long>(delivered.size()) < count && Clock::now() < deadline) {
    for (auto& step : at) step.second.clear();
    ak::TopicFollower events(settings, catalog.topic("events"), "latency-bench");
    events.catch_up([&](const ak::InboundRecord& r) { note("events", r); }, std::chrono::seconds(60));
    if (static_cast<long long>(delivered.size()) < count) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Where the time goes (#23 item 3): the steps between, each from its input's CreateTime to its
  // output's (the handler, the fetch wait, the hand-offs, and the input's own linger and write).
  json hops = json::array();
  if (a.num("hops", 0) != 0) {
    for (const char* topic :
         {"tasks.critical", "tasks.high", "tasks.normal", "tasks.low", "qa.requests", "deploy.requests"}) {
      const std::string step = std::string(topic).rfind("tasks.", 0) == 0 ? "prioritized" : topic;
      ak::TopicFollower follower(settings, catalog.topic(topic), "latency-bench");
      follower.catch_up([&](const ak::InboundRecord& r) { note(step, r); }, std::chrono::seconds(60));
    }
    const std::vector<std::pair<std::string, std::string>> steps = {
        {"priority-assigner", "prioritized"},      {"dev-fix-worker", "FILE_COMPLETED"},
        {"router (to QA)", "qa.requests"},         {"qa-worker", "QA_PASSED"},
        {"router (to deploy)", "deploy.requests"}, {"outbox-uploader", "UPLOADED"}};
    std::string from = "submitted";
    at["submitted"] = submitted;
    for (const auto& [hop, to] : steps) {
      std::vector<double> took;
      for (const auto& [task, t] : at[to]) {
        auto before = at[from].find(task);
        if (before != at[from].end()) took.push_back(static_cast<double>(t - before->second));
      }
      hops.push_back({{"step", hop},
                      {"tasks", took.size()},
                      {"p50_ms", percentile(took, 0.5)},
                      {"p99_ms", percentile(took, 0.99)}});
      from = to;
    }
  }
  std::vector<double> ms;
  std::int64_t first = INT64_MAX, last = 0;
  for (const auto& [task, t] : delivered) {
    auto it = submitted.find(task);
    if (it == submitted.end()) continue;
    ms.push_back(static_cast<double>(t - it->second));
    first = std::min(first, it->second);
    last = std::max(last, t);
  }
  std::cout << json{{"delivered", delivered.size()},
                    {"matched", ms.size()},
                    {"p50_ms", percentile(ms, 0.5)},
                    {"p95_ms", percentile(ms, 0.95)},
                    {"p99_ms", percentile(ms, 0.99)},
                    {"span_s", ms.empty() ? 0.0 : static_cast<double>(last - first) / 1000.0},
                    {"hops", hops}}
                   .dump()
            << std::endl;
  return static_cast<long long>(ms.size()) >= count ? 0 : 1;
}

// Tasks added behind a backlog (critical ones, or one tenant's beside another's flood): from each
// one's acknowledged record to its FILE_COMPLETED.
int wait(const Args& a) {
  auto catalog = ak::TopicCatalog::load("");
  catalog.set_prefix(a.get("prefix", "agentline."));
  const ak::KafkaSettings settings{a.get("bootstrap"), {}, ""};
  const auto count = a.num("count", 50);
  const std::string id_prefix = a.get("id-prefix", "crit-");
  const auto interval = std::chrono::milliseconds(a.num("interval-ms", 20));
  std::map<std::string, std::int64_t> sent;
  {
    ak::Producer p(settings, "wait-bench");
    for (long long i = 0; i < count; ++i) {
      const std::string id = id_prefix + std::to_string(i);
      ak::OutgoingRecord r{a.get("topic"),
                           id,
                           message("task", id, static_cast<int>(i), 300, a.get("job", "crit"),
                                   a.get("priority", "critical"), a.get("tenant")),
                           {}};
      const auto report = p.send_and_wait(r);
      if (!report.ok) throw std::runtime_error("produce: " + report.error);
      sent[r.key] = agentline::events::now_ms();
      std::this_thread::sleep_for(interval);
    }
  }
  std::map<std::string, std::int64_t> done;
  const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout-s", 300));
  ak::TopicFollower events(settings, catalog.topic("events"), "wait-bench");
  std::mutex mu;
  auto on = [&](const ak::InboundRecord& r) {
    auto m = json::parse(r.value, nullptr, false);
    if (!m.is_object() || m.value("type", "") != "FILE_COMPLETED" || m.value("task_id", "").rfind(id_prefix, 0) != 0)
      return;
    std::lock_guard lock(mu);
    done.emplace(m.value("task_id", ""), r.timestamp_ms);
  };
  events.catch_up(on, std::chrono::seconds(60));
  events.follow(on);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (static_cast<long long>(done.size()) >= count || Clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  events.stop();
  std::vector<double> waits;
  for (const auto& [task, t] : done) waits.push_back(static_cast<double>(t - sent[task]));
  double mean = 0;
  for (double w : waits) mean += w / static_cast<double>(std::max<std::size_t>(1, waits.size()));
  std::cout << json{{"completed", waits.size()},
                    {"wait_ms_mean", mean},
                    {"wait_ms_max", percentile(waits, 1.0)},
                    {"wait_ms_p50", percentile(waits, 0.5)},
                    {"wait_ms_p99", percentile(waits, 0.99)}}
                   .dump()
            << std::endl;
  return static_cast<long long>(waits.size()) >= count ? 0 : 1;
}

// The last job summary of job J on jobs.progress (the router's: counts, usage, budget).
int summary(const Args& a) {
  auto catalog = ak::TopicCatalog::load("");
  catalog.set_prefix(a.get("prefix", "agentline."));
  ak::TopicFollower progress(ak::KafkaSettings{a.get("bootstrap"), {}, ""}, catalog.topic("jobs.progress"),
                             "summary-bench");
  json last;
  progress.catch_up(
      [&](const ak::InboundRecord& r) {
        if (r.key && *r.key == a.get("job") && !r.value.empty()) last = json::parse(r.value, nullptr, false);
      },
      std::chrono::seconds(60));
  std::cout << last.dump() << std::endl;
  return last.is_object() ? 0 : 1;
}

}  // namespace

// qa-worker's baseline (#23): what starting its checks costs without the worker around them. T
// threads (qa-worker's handlers) each run argv per check in a work directory of its own, made,
// given the checked file and removed as qa-worker does, with its sandbox's limits (its defaults:
// 10 CPU s, 1 GiB address space, 16 MiB files, 64 processes) and, as root, a uid of the thread's
// own, reading the output to its end: fork() from this small process, waitpid() blocking.
int spawn(const Args& a) {
  const long long count = a.num("count", 1000);
  const int threads = static_cast<int>(a.num("threads", 4));
  const auto found = a.values.find("argv");
  if (found == a.values.end() || found->second.empty()) throw std::runtime_error("spawn needs --argv");
  const std::vector<std::string> argv = found->second;
  const bool root = ::geteuid() == 0;
  std::atomic<long long> next{0}, failed{0};
  std::string first_failure;
  std::mutex mu;
  const auto started = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const uid_t uid = root ? static_cast<uid_t>(200000 + t) : ::geteuid();
      for (long long i; (i = next++) < count;) {
        const auto dir = std::filesystem::temp_directory_path() /
                         ("agentline-spawn-" + std::to_string(::getpid()) + "-" + std::to_string(i));
        std::filesystem::create_directories(dir);
        std::filesystem::permissions(dir, std::filesystem::perms::all);
        std::ofstream(dir / "check.py") << "x = 1\n";
        std::vector<std::string> args;
        for (const auto& arg : argv) args.push_back(arg == "{dir}" ? dir.string() : arg);
        std::vector<char*> ptrs;
        for (auto& arg : args) ptrs.push_back(arg.data());
        ptrs.push_back(nullptr);
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        const pid_t pid = ::fork();
        if (pid == 0) {
          ::setsid();
          ::dup2(out[1], 1);
          ::dup2(out[1], 2);
          if (::chdir(dir.c_str()) != 0) ::_exit(125);
          const rlimit cpu{10, 11}, as{1ull << 30, 1ull << 30}, fsize{16ull << 20, 16ull << 20}, nproc{64, 64};
          ::setrlimit(RLIMIT_CPU, &cpu);
          ::setrlimit(RLIMIT_AS, &as);
          ::setrlimit(RLIMIT_FSIZE, &fsize);
          if (root && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(uid) != 0)) ::_exit(126);
          ::setrlimit(RLIMIT_NPROC, &nproc);
          ::execvp(ptrs[0], ptrs.data());
          ::_exit(127);
        }
        ::close(out[1]);
        std::string output;
        char buf[4096];
        for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) output.append(buf, static_cast<std::size_t>(n));
        ::close(out[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          if (failed++ == 0) {
            std::lock_guard lock(mu);
            first_failure = output.substr(0, 300);
          }
        }
        std::filesystem::remove_all(dir);
      }
    });
  }
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::cout << json{{"runs", count},
                    {"failed", failed.load()},
                    {"first_failure", first_failure},
                    {"seconds", seconds},
                    {"runs_per_s", static_cast<double>(count) / seconds},
                    {"threads", threads}}
                   .dump()
            << std::endl;
  return failed == 0 ? 0 : 1;
}

// outbox-uploader's baseline (#23): the durable writes its filesystem target makes per file,
// nothing else. T threads (its upload concurrency) write N files of S bytes under D/<job>/, each
// as the target does: a temporary file written and fsynced, renamed over the name, the folder
// fsynced.
int files(const Args& a) {
  const long long count = a.num("count", 1000);
  const int threads = static_cast<int>(a.num("threads", 8));
  const auto size = static_cast<std::size_t>(a.num("size", 1024));
  const std::filesystem::path root = a.get("dir");
  if (root.empty()) throw std::runtime_error("files needs --dir");
  const std::string content = "# " + pad(size, 2);
  std::atomic<long long> next{0}, failed{0};
  const auto sync = [](const std::filesystem::path& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
  };
  const auto started = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (long long i; (i = next++) < count;) {
        const auto dir = root / ("job-" + std::to_string(i / 20)) / "src";
        std::filesystem::create_directories(dir);
        const auto target = dir / ("f" + std::to_string(i) + ".py");
        const auto tmp = dir / (".f" + std::to_string(i) + ".py.tmp");
        {
          std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
          out.write(content.data(), static_cast<std::streamsize>(content.size()));
        }
        std::error_code ec;
        if (!sync(tmp, O_RDONLY)) ++failed;
        std::filesystem::rename(tmp, target, ec);
        if (ec || !sync(dir, O_RDONLY | O_DIRECTORY)) ++failed;
      }
    });
  }
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::cout << json{{"files", count},
                    {"failed", failed.load()},
                    {"seconds", seconds},
                    {"files_per_s", static_cast<double>(count) / seconds},
                    {"threads", threads}}
                   .dump()
            << std::endl;
  return failed == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: pipeline_bench fill|bare|drain|retry|latency --bootstrap B ...\n";
    return 2;
  }
  const std::string cmd = argv[1];
  const Args a = parse(argc, argv);
  try {
    if (cmd == "fill") return fill(a);
    if (cmd == "bare") return bare(a);
    if (cmd == "chain") return chain(a);
    if (cmd == "drain") return drain(a);
    if (cmd == "span") return span(a);
    if (cmd == "retry") return retry(a);
    if (cmd == "latency") return latency(a);
    if (cmd == "wait") return wait(a);
    if (cmd == "summary") return summary(a);
    if (cmd == "spawn") return spawn(a);
    if (cmd == "files") return files(a);
  } catch (const std::exception& e) {
    std::cerr << "pipeline_bench " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "unknown command " << cmd << "\n";
  return 2;
}
