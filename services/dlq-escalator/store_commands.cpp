#include "store_commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agentline/config/options.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/observability/metric_families.h"
#include "replay.h"

namespace agentline::dlq {
namespace {

// One stored record as JSON (`list --json`, POST /dlq/list); the value cut at value_max bytes.
nlohmann::json record_json(const StoredRecord& r, std::size_t value_max) {
  return {{"id", r.id},
          {"dead_lettered_at", events::iso8601(r.info.dead_lettered_ms)},
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
          {"value", value_max == std::string::npos ? r.value : kafka::bounded_message(r.value, value_max)}};
}

// The filter of POST /dlq/list and /dlq/replay: {"job", "task", "reason", "topic", "since_ms",
// "until_ms", "limit", "include_replayed"}; unknown keys are an error.
Filter filter_from(const nlohmann::json& body) {
  if (!body.is_object()) throw std::invalid_argument("the body must be a JSON object");
  Filter f;
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

int run_command(int argc, char** argv) {
  const std::string command = argv[1];
  config::OptionSet o("dlq-escalator " + command, command == "list"
                                                      ? "Stored DLQ records"
                                                      : "Send stored DLQ records back to their original topic");
  o.set_version(kafka::version_line());
  service::ConnectionOptions connection;
  std::string db, since, until;
  ReplayOptions replay;
  bool json = false;
  service::bind_connection_options(o, connection);
  o.add("db", &db, "The DLQ store (the service's --db; default: <state-dir>/dlq-escalator.db)");
  o.add("job", &replay.filter.job_id, "Only this job");
  o.add("task", &replay.filter.task_id, "Only this task");
  o.add("reason", &replay.filter.reason, "Only this error class (agentline-error-class)");
  o.add("topic", &replay.filter.original_topic, "Only records from this original topic (full or logical name)");
  o.add("since", &since, "Dead-lettered at or after: 2026-11-22T10:00:00Z, 2026-11-22, 30m, 2h, 1d, or ms");
  o.add("until", &until, "Dead-lettered before (same forms)");
  o.add("limit", &replay.filter.limit, "At most this many records");
  o.add_flag("include-replayed", &replay.filter.include_replayed, "Also records replayed before");
  if (command == "list") {
    o.add_flag("json", &json, "Print JSON lines");
  } else {
    o.add("to", &replay.to_topic, "Target topic instead of each record's original topic");
    o.add_flag("dry-run", &replay.dry_run, "Show what would be replayed; send nothing");
    o.add("rate", &replay.rate_per_second, "Records per second (0: unlimited)");
    o.add("max-replays", &replay.max_replays, "Loop guard: refuse a task replayed this many times");
  }
  try {
    std::vector<std::string> args(argv + 2, argv + argc);
    if (o.parse(args) == config::OptionSet::Outcome::kExit) return 0;
    const auto now = events::now_ms();
    for (auto [text, target] :
         {std::pair{&since, &replay.filter.since_ms}, std::pair{&until, &replay.filter.until_ms}}) {
      if (text->empty()) continue;
      auto t = parse_time(*text, now);
      if (!t) throw config::ConfigError("cannot read the time " + *text);
      *target = *t;
    }
  } catch (const std::exception& e) {
    std::cerr << "dlq-escalator " << command << ": " << e.what() << "\n";
    return 2;
  }
  if (db.empty()) db = (std::filesystem::path(connection.state_dir) / "dlq-escalator.db").string();
  if (!std::filesystem::exists(db)) {
    std::cerr << "dlq-escalator: no DLQ store at " << db << " (give --db)\n";
    return 2;
  }
  DlqStore store(db);
  if (command == "list") {
    const auto records = store.query(replay.filter);
    for (const auto& r : records) {
      if (json) {
        std::cout << record_json(r, std::string::npos).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::cout << r.id << "\t" << events::iso8601(r.info.dead_lettered_ms) << "\t"
                  << (r.info.job_id.empty() ? "-" : r.info.job_id) << "\t"
                  << (r.info.task_id.empty() ? "-" : r.info.task_id) << "\t" << r.info.error_class << "\t"
                  << r.info.original_topic << (r.replays ? "\treplayed x" + std::to_string(r.replays) : "\t") << "\t"
                  << r.info.error_message.substr(0, 120) << "\n";
      }
    }
    if (!json) std::cerr << records.size() << " record(s)\n";
    return 0;
  }
  std::unique_ptr<kafka::Producer> producer;
  if (!replay.dry_run)
    producer = std::make_unique<kafka::Producer>(connection.kafka_settings(), "dlq-escalator-replay");
  const auto report = dlq::replay(store, producer.get(), replay, std::cout);
  std::cout << (replay.dry_run ? "dry run: " : "") << "selected " << report.selected << ", "
            << (replay.dry_run ? "would replay " : "replayed ") << report.replayed << ", refused by the loop guard "
            << report.refused_loop_guard << ", without a target " << report.no_target << ", failed " << report.failed
            << "\n";
  return report.failed > 0 ? 1 : 0;
}

}  // namespace

std::optional<int> run_store_command(int argc, char** argv) {
  if (argc < 2 || (std::string(argv[1]) != "list" && std::string(argv[1]) != "replay")) return std::nullopt;
  try {
    return run_command(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dlq-escalator: " << e.what() << "\n";
    return 1;
  }
}

StoreRoutes::StoreRoutes(DlqStore& store, kafka::KafkaSettings settings)
    : store_(store), settings_(std::move(settings)) {}

void StoreRoutes::add_to(service::ServiceHost& host) {
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
  host.add_admin_route("POST", "/dlq/list", json_route([this](const nlohmann::json& body) {
                         nlohmann::json out = {{"records", nlohmann::json::array()}};
                         for (const auto& r : store_.query(filter_from(body)))
                           out["records"].push_back(record_json(r, 4096));
                         return out;
                       }));
  host.add_admin_route("POST", "/dlq/replay", json_route([this](const nlohmann::json& body) {
                         ReplayOptions options;
                         options.filter = filter_from(body);
                         options.dry_run = body.value("dry_run", false);
                         options.max_replays = body.value("max_replays", options.max_replays);
                         options.rate_per_second = body.value("rate", options.rate_per_second);
                         if (options.rate_per_second < 0)
                           throw std::invalid_argument("rate must be 0 (unlimited) or more");
                         if (options.max_replays < 1) throw std::invalid_argument("max_replays must be at least 1");
                         if (body.contains("dry_run") && !body["dry_run"].is_boolean())
                           throw std::invalid_argument("dry_run must be true or false");
                         std::lock_guard lock(replay_mutex_);
                         if (!options.dry_run && !producer_)
                           producer_ = std::make_unique<kafka::Producer>(settings_, "dlq-escalator-replay");
                         std::ostringstream log;
                         const auto report = dlq::replay(store_, producer_.get(), options, log);
                         return nlohmann::json{{"dry_run", options.dry_run},
                                               {"selected", report.selected},
                                               {"replayed", report.replayed},
                                               {"refused_loop_guard", report.refused_loop_guard},
                                               {"no_target", report.no_target},
                                               {"failed", report.failed},
                                               {"log", log.str()}};
                       }));
  host.add_metrics([this](std::vector<prometheus::MetricFamily>& families) {
    auto& stored = observability::family(families, "agentline_dlq_stored_records",
                                         "Records in the DLQ store, by reason", prometheus::MetricType::Gauge);
    try {
      for (const auto& [reason, n] : store_.counts_by_reason())
        observability::add_sample(stored, {{"reason", reason}}, static_cast<double>(n));
    } catch (const std::exception& e) {
      spdlog::warn("dlq metrics: {}", e.what());
    }
  });
}

}  // namespace agentline::dlq
