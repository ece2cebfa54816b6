// dlq-escalator: the DLQ -> SQLite store, ESCALATED events, a chat digest per window, and
// the commands that read the store:
//   dlq-escalator list   [--job J] [--task T] [--reason R] [--topic T] [--since S] [--until U] [--json]
//   dlq-escalator replay [same filters] [--to TOPIC] [--dry-run] [--rate N] [--max-replays N]
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agentline/config/options.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/metric_families.h"
#include "agentline/service/service_host.h"
#include "agentline/storage/volume_watch.h"
#include "dlq_store.h"
#include "escalator.h"
#include "replay.h"

namespace {

// One stored record as JSON (`list --json`, POST /dlq/list); the value cut at value_max bytes.
nlohmann::json record_json(const agentline::dlq::StoredRecord& r, std::size_t value_max) {
  return {{"id", r.id},
          {"dead_lettered_at", agentline::events::iso8601(r.info.dead_lettered_ms)},
          {"job_id", r.info.job_id},
          {"task_id", r.info.task_id},
          {"reason", r.info.error_class},
          {"message", r.info.error_message},
          {"original_topic", r.info.original_topic},
          {"original_partition", r.info.original_partition},
          {"original_offset", r.info.original_offset},
          {"service", r.info.failed_service},
          {"dialect", r.info.dialect},
          {"replay_count", r.info.replay_count},
          {"replays", r.replays},
          {"replayed_to", r.replayed_to},
          {"dlq", r.dlq_topic + "/" + std::to_string(r.dlq_partition) + "/" + std::to_string(r.dlq_offset)},
          {"key", r.key ? nlohmann::json(*r.key) : nlohmann::json()},
          {"value", value_max == std::string::npos ? r.value : agentline::kafka::bounded_message(r.value, value_max)}};
}

// The filter of POST /dlq/list and /dlq/replay: {"job", "task", "reason", "topic", "since_ms",
// "until_ms", "limit", "include_replayed"}; unknown keys are an error.
agentline::dlq::Filter filter_from(const nlohmann::json& body) {
  if (!body.is_object()) throw std::invalid_argument("the body must be a JSON object");
  agentline::dlq::Filter f;
  for (const auto& [key, value] : body.items()) {
    if (key == "job")
      f.job_id = value.get<std::string>();
    else if (key == "task")
      f.task_id = value.get<std::string>();
    else if (key == "reason")
      f.reason = value.get<std::string>();
    else if (key == "topic")
      f.original_topic = value.get<std::string>();
    else if (key == "since_ms")
      f.since_ms = value.get<std::int64_t>();
    else if (key == "until_ms")
      f.until_ms = value.get<std::int64_t>();
    else if (key == "limit")
      f.limit = std::clamp(value.get<int>(), 1, 10000);
    else if (key == "include_replayed")
      f.include_replayed = value.get<bool>();
    else if (key != "dry_run" && key != "max_replays" && key != "rate")
      throw std::invalid_argument("unknown key '" + key + "'");
  }
  return f;
}

int store_command(int argc, char** argv) {
  CLI::App app("dlq-escalator commands over the DLQ store");
  std::string db = ".agentline/dlq-escalator.db";
  std::string since, until, bootstrap, state_dir = ".agentline";
  std::vector<std::string> properties;
  agentline::dlq::ReplayOptions replay;
  bool json = false;
  auto filters = [&](CLI::App* sub) {
    sub->add_option("--db", db, "The DLQ store (the service's --db)")->capture_default_str();
    sub->add_option("--job", replay.filter.job_id, "Only this job");
    sub->add_option("--task", replay.filter.task_id, "Only this task");
    sub->add_option("--reason", replay.filter.reason, "Only this error class (agentline-error-class)");
    sub->add_option("--topic", replay.filter.original_topic,
                    "Only records from this original topic (full or logical name)");
    sub->add_option("--since", since,
                    "Dead-lettered at or after: 2026-11-22T10:00:00Z, 2026-11-22, 30m, 2h, 1d, or ms");
    sub->add_option("--until", until, "Dead-lettered before (same forms)");
    sub->add_option("--limit", replay.filter.limit, "At most this many records")->capture_default_str();
    sub->add_flag("--include-replayed", replay.filter.include_replayed, "Also records replayed before");
  };
  auto* list = app.add_subcommand("list", "Stored DLQ records");
  filters(list);
  list->add_flag("--json", json, "Print JSON lines");
  auto* rep = app.add_subcommand("replay", "Send stored DLQ records back to their original topic");
  filters(rep);
  rep->add_option("--to", replay.to_topic, "Target topic instead of each record's original topic");
  rep->add_flag("--dry-run", replay.dry_run, "Show what would be replayed; send nothing");
  rep->add_option("--rate", replay.rate_per_second, "Records per second (0: unlimited)")->capture_default_str();
  rep->add_option("--max-replays", replay.max_replays, "Loop guard: refuse a task replayed this many times")
      ->capture_default_str();
  rep->add_option("--bootstrap-servers", bootstrap,
                  "Kafka bootstrap servers; empty: the embedded broker's from --state-dir");
  rep->add_option("--state-dir", state_dir, "Where `agentline broker` writes its address")->capture_default_str();
  rep->add_option("-X", properties, "librdkafka property key=value (repeatable)");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  const auto now = agentline::events::now_ms();
  if (!since.empty()) {
    auto t = agentline::dlq::parse_time(since, now);
    if (!t) throw std::invalid_argument("cannot read --since " + since);
    replay.filter.since_ms = *t;
  }
  if (!until.empty()) {
    auto t = agentline::dlq::parse_time(until, now);
    if (!t) throw std::invalid_argument("cannot read --until " + until);
    replay.filter.until_ms = *t;
  }
  if (!std::filesystem::exists(db)) {
    std::cerr << "dlq-escalator: no DLQ store at " << db << " (give --db)\n";
    return 2;
  }
  agentline::dlq::DlqStore store(db);
  if (*list) {
    const auto records = store.query(replay.filter);
    for (const auto& r : records) {
      if (json) {
        const nlohmann::json j = record_json(r, std::string::npos);
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        std::cout << r.id << "\t" << agentline::events::iso8601(r.info.dead_lettered_ms) << "\t"
                  << (r.info.job_id.empty() ? "-" : r.info.job_id) << "\t"
                  << (r.info.task_id.empty() ? "-" : r.info.task_id) << "\t" << r.info.error_class << "\t"
                  << r.info.original_topic << (r.replays ? "\treplayed x" + std::to_string(r.replays) : "\t") << "\t"
                  << r.info.error_message.substr(0, 120) << "\n";
      }
    }
    if (!json) std::cerr << records.size() << " record(s)\n";
    return 0;
  }
  std::unique_ptr<agentline::kafka::Producer> producer;
  if (!replay.dry_run) {
    agentline::kafka::KafkaSettings settings{bootstrap, agentline::config::parse_properties(properties), state_dir};
    producer = std::make_unique<agentline::kafka::Producer>(settings, "dlq-escalator-replay");
  }
  const auto report = agentline::dlq::replay(store, producer.get(), replay, std::cout);
  std::cout << (replay.dry_run ? "dry run: " : "") << "selected " << report.selected << ", "
            << (replay.dry_run ? "would replay " : "replayed ") << report.replayed << ", refused by the loop guard "
            << report.refused_loop_guard << ", without a target " << report.no_target << ", failed " << report.failed
            << "\n";
  return report.failed > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "list" || std::string(argv[1]) == "replay")) {
    try {
      return store_command(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "dlq-escalator: " << e.what() << "\n";
      return 1;
    }
  }
  agentline::service::ServiceHost host(
      "dlq-escalator",
      "Stores dead-lettered records in SQLite, escalates each (ESCALATED events), sends one chat digest per window.\n"
      "Commands: dlq-escalator list [filters] | replay [filters] [--dry-run] (with --db).",
      {"dlq"});
  std::string db, digest_token_file;
  agentline::dlq::EscalatorConfig config;
  int digest_window_ms = 60000;
  int min_free_mb = 64;
  auto& o = host.options();
  o.add("db", &db, "DLQ store file (default: <state-dir>/dlq-escalator.db)");
  o.add("digest-url", &config.digest_url, "Webhook (Slack-compatible) for the digest; empty: no digest");
  o.add("digest-token-file", &digest_token_file,
        "File holding a bearer token for the digest webhook (or env AGENTLINE_DIGEST_TOKEN)");
  o.add("digest-window-ms", &digest_window_ms, "Records of this window go into one digest message");
  o.add("min-free-mb", &min_free_mb, "Not ready while the store's volume has less free space than this");
  if (auto exit_code = host.configure(argc, argv)) return *exit_code;
  try {
    if (db.empty()) db = (std::filesystem::path(host.common().state_dir) / "dlq-escalator.db").string();
    config.digest_token = agentline::config::read_secret(digest_token_file, "AGENTLINE_DIGEST_TOKEN");
    if (digest_window_ms < 100) throw std::invalid_argument("--digest-window-ms must be at least 100");
    config.digest_window = std::chrono::milliseconds(digest_window_ms);
  } catch (const std::exception& e) {
    std::cerr << "dlq-escalator: configuration error: " << e.what() << "\n";
    return 2;
  }
  config.escalations_topic = host.catalog().topic("escalations");
  config.dashboard_hint =
      "List them: `dlq-escalator list --db " + db + " --since 1h`; replay: `dlq-escalator replay --dry-run ...`";
  std::unique_ptr<agentline::dlq::DlqStore> store;
  try {
    store = std::make_unique<agentline::dlq::DlqStore>(db);
  } catch (const std::exception& e) {
    std::cerr << "dlq-escalator: cannot open the DLQ store: " << e.what() << "\n";
    return 1;
  }
  agentline::dlq::Escalator escalator(config, *store, *host.registry());
  agentline::storage::VolumeWatch volume("dlq", db, static_cast<std::uint64_t>(std::max(0, min_free_mb)) * 1024 * 1024,
                                         host.health(), *host.registry());
  host.add_metrics([&](auto& families) {
    auto& stored = agentline::observability::family(
        families, "agentline_dlq_stored_records", "Records in the DLQ store, by reason", prometheus::MetricType::Gauge);
    try {
      for (const auto& [reason, n] : store->counts_by_reason())
        agentline::observability::add_sample(stored, {{"reason", reason}}, static_cast<double>(n));
    } catch (const std::exception& e) {
      spdlog::warn("dlq metrics: {}", e.what());
    }
  });
  // The store over HTTP, for the gateway's DLQ page: list, and replay (which needs a producer).
  std::mutex replay_mutex;
  std::unique_ptr<agentline::kafka::Producer> replay_producer;
  auto json_route = [](auto&& fn) {
    return [fn](const std::string& body) -> std::pair<int, std::string> {
      try {
        return {200, fn(body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body))
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
      } catch (const std::exception& e) {
        return {400,
                nlohmann::json{{"error", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
      }
    };
  };
  host.add_route("POST /dlq/list", json_route([&](const nlohmann::json& body) {
                   nlohmann::json out = {{"records", nlohmann::json::array()}};
                   for (const auto& r : store->query(filter_from(body))) out["records"].push_back(record_json(r, 4096));
                   return out;
                 }));
  host.add_route("POST /dlq/replay", json_route([&](const nlohmann::json& body) {
                   agentline::dlq::ReplayOptions options;
                   options.filter = filter_from(body);
                   options.dry_run = body.value("dry_run", false);
                   options.max_replays = body.value("max_replays", options.max_replays);
                   options.rate_per_second = body.value("rate", options.rate_per_second);
                   if (options.rate_per_second < 0) throw std::invalid_argument("rate must be 0 (unlimited) or more");
                   if (options.max_replays < 1) throw std::invalid_argument("max_replays must be at least 1");
                   if (body.contains("dry_run") && !body["dry_run"].is_boolean())
                     throw std::invalid_argument("dry_run must be true or false");
                   std::lock_guard lock(replay_mutex);
                   if (!options.dry_run && !replay_producer) {
                     replay_producer =
                         std::make_unique<agentline::kafka::Producer>(host.kafka_settings(), "dlq-escalator-replay");
                   }
                   std::ostringstream log;
                   const auto report = agentline::dlq::replay(*store, replay_producer.get(), options, log);
                   return nlohmann::json{{"dry_run", options.dry_run},
                                         {"selected", report.selected},
                                         {"replayed", report.replayed},
                                         {"refused_loop_guard", report.refused_loop_guard},
                                         {"no_target", report.no_target},
                                         {"failed", report.failed},
                                         {"log", log.str()}};
                 }));
  spdlog::info("DLQ store {}; digest {}", db,
               config.digest_url.empty() ? "off" : "every " + std::to_string(digest_window_ms) + " ms");
  escalator.start_digest();
  const int rc = host.run([&](const agentline::kafka::InboundRecord& record, agentline::kafka::Emitter& out) {
    return escalator.handle(record, out);
  });
  escalator.stop_digest();
  return rc;
}
