#include "escalator.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "agentline/cache/result_cache.h"
#include "agentline/config/options.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/dead_letter.h"
#include "agentline/net/http_client.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::dlq {
namespace {

std::string top(const std::map<std::string, std::int64_t>& counts, std::size_t n) {
  std::vector<std::pair<std::int64_t, std::string>> sorted;
  for (const auto& [k, v] : counts) sorted.emplace_back(v, k);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out;
  for (std::size_t i = 0; i < sorted.size() && i < n; ++i)
    out += "\n• `" + sorted[i].second + "`: " + std::to_string(sorted[i].first);
  if (sorted.size() > n) out += "\n• … and " + std::to_string(sorted.size() - n) + " more";
  return out;
}

}  // namespace

void EscalatorOptions::bind(config::OptionSet& o) {
  o.add("db", &db, "DLQ store file (default: <state-dir>/dlq-escalator.db)");
  o.add("digest-url", &config.digest_url, "Webhook (Slack-compatible) for the digest; empty: no digest");
  o.add("digest-token-file", &digest_token_file,
        "File holding a bearer token for the digest webhook (or env AGENTLINE_DIGEST_TOKEN)");
  o.add("digest-window-ms", &config.digest_window, "Records of this window go into one digest message");
  o.add("min-free-mb", &min_free_mb, "Not ready while the store's volume has less free space than this");
}

void EscalatorOptions::resolve(const std::string& state_dir, const std::string& escalations_topic) {
  if (db.empty()) db = (std::filesystem::path(state_dir) / "dlq-escalator.db").string();
  config.digest_token = config::read_secret(digest_token_file, "AGENTLINE_DIGEST_TOKEN");
  if (config.digest_window < std::chrono::milliseconds(100))
    throw std::invalid_argument("--digest-window-ms must be at least 100");
  config.escalations_topic = escalations_topic;
  config.dashboard_hint =
      "List them: `dlq-escalator list --db " + db + " --since 1h`; replay: `dlq-escalator replay --dry-run ...`";
}

Escalator::Escalator(EscalatorConfig config, DlqStore& store, prometheus::Registry& registry)
    : config_(std::move(config)), store_(store) {
  records_ = &observability::counter(
      registry, "agentline_dlq_records_total",
      "Dead-lettered records stored, by reason (error class) and dialect (agentline, spring, connect, "
      "unknown)");
  escalated_ = &observability::counter(registry, "agentline_escalations_total", "ESCALATED events emitted, by reason");
  digests_ =
      &observability::counter(registry, "agentline_dlq_digests_total", "Digest messages, by outcome (sent, failed)");
  for (const char* outcome : {"sent", "failed"}) digests_->Add({{"outcome", outcome}});
}

Escalator::~Escalator() { stop_digest(); }

std::optional<kafka::Failure> Escalator::handle(const kafka::InboundRecord& record, kafka::Emitter& out) {
  const DeadLetter d = describe(record);
  bool fresh = false;
  try {
    fresh = store_.store(record, d, events::now_ms());
  } catch (const storage::SqliteError& e) {
    return kafka::Failure::backoff("dlq_store_unavailable", e.what(), std::chrono::seconds(5));
  }
  if (fresh) records_->Add({{"reason", d.error_class}, {"dialect", d.dialect}}).Increment();
  const std::string position =
      record.topic + "-" + std::to_string(record.partition) + "-" + std::to_string(record.offset);
  nlohmann::json payload = {{"reason", d.error_message.empty() ? d.error_class : d.error_message},
                            {"error_class", d.error_class},
                            {"original_topic", d.original_topic},
                            {"service", d.failed_service},
                            {"dialect", d.dialect},
                            {"dlq_position", position},
                            {"dead_lettered_at", events::iso8601(d.dead_lettered_ms)}};
  if (d.replay_count > 0) payload["replay_count"] = d.replay_count;
  nlohmann::json event = {{"id", "esc-" + cache::sha256_hex(position).substr(0, 32)},
                          {"task_id", d.task_id.empty() ? "unknown" : d.task_id},
                          {"job_id", d.job_id.empty() ? "unknown" : d.job_id},
                          {"type", "ESCALATED"},
                          {"created_at", events::iso8601(events::now_ms())},
                          {"payload", payload}};
  if (auto failure = validator_.validate_event(event)) {
    // Cannot happen for what describe() returns; logged rather than dead-lettered again.
    spdlog::error("ESCALATED for {} is invalid ({}); not emitted", position, failure->message);
    return std::nullopt;
  }
  out.emit(events::make_record(config_.escalations_topic, event["job_id"], event, &record,
                               validator_.event_schema_id("ESCALATED")));
  escalated_->Add({{"reason", d.error_class}}).Increment();
  if (fresh && digest_) digest_->wake();
  return std::nullopt;
}

std::string Escalator::digest_message(const std::vector<StoredRecord>& records, std::int64_t total,
                                      const std::string& hint) {
  std::map<std::string, std::int64_t> by_reason, by_job, by_topic;
  std::int64_t first = 0, last = 0;
  for (const auto& r : records) {
    by_reason[r.info.error_class]++;
    by_job[r.info.job_id.empty() ? "(unknown)" : r.info.job_id]++;
    by_topic[r.info.original_topic.empty() ? "(unknown)" : r.info.original_topic]++;
    first = first == 0 ? r.info.dead_lettered_ms : std::min(first, r.info.dead_lettered_ms);
    last = std::max(last, r.info.dead_lettered_ms);
  }
  const std::string title = "Agentline: " + std::to_string(total) + " dead-lettered record" + (total == 1 ? "" : "s");
  std::string summary = "Between " + events::iso8601(first) + " and " + events::iso8601(last) + ".";
  if (static_cast<std::int64_t>(records.size()) < total) {
    summary += " Details cover the first " + std::to_string(records.size()) + ".";
  }
  std::string examples;
  for (std::size_t i = 0; i < records.size() && i < 5; ++i) {
    const auto& r = records[i];
    examples += "\n• " + (r.info.task_id.empty() ? std::string("(no task id)") : r.info.task_id) + " — `" +
                r.info.error_class + "`: " + kafka::bounded_message(r.info.error_message, 200);
  }
  nlohmann::json blocks = nlohmann::json::array();
  blocks.push_back({{"type", "header"}, {"text", {{"type", "plain_text"}, {"text", title}}}});
  blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", summary}}}});
  blocks.push_back({{"type", "section"},
                    {"fields",
                     {{{"type", "mrkdwn"}, {"text", "*By reason*" + top(by_reason, 8)}},
                      {{"type", "mrkdwn"}, {"text", "*By job*" + top(by_job, 8)}},
                      {{"type", "mrkdwn"}, {"text", "*By original topic*" + top(by_topic, 8)}}}}});
  if (!examples.empty())
    blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", "*Examples*" + examples}}}});
  if (!hint.empty()) blocks.push_back({{"type", "context"}, {"elements", {{{"type", "mrkdwn"}, {"text", hint}}}}});
  nlohmann::json message = {{"text", title + ". " + summary + " By reason:" + top(by_reason, 8)},
                            {"blocks", blocks},
                            {"agentline", {{"records", total}, {"by_reason", by_reason}, {"by_job", by_job}}}};
  return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::int64_t Escalator::digest_once(bool force) {
  if (config_.digest_url.empty()) return 0;
  const auto oldest = store_.oldest_undigested_ms();
  if (!oldest) return 0;
  if (!force && events::now_ms() < *oldest + config_.digest_window.count()) return 0;
  // Records stored after this count wait for the next window.
  const auto [total, last_id] = store_.count_undigested();
  auto records = store_.undigested(1000);
  std::erase_if(records, [last = last_id](const StoredRecord& r) { return r.id > last; });
  if (records.empty()) return 0;
  net::HttpRequest req;
  req.url = config_.digest_url;
  req.timeout = config_.digest_timeout;
  req.headers = {{"Content-Type", "application/json"}};
  if (!config_.digest_token.empty()) req.headers.emplace_back("Authorization", "Bearer " + config_.digest_token);
  const std::int64_t covered = total;
  req.body = digest_message(records, covered, config_.dashboard_hint);
  const auto r = net::http_call(req);
  if (!r.ok()) {
    digests_->Add({{"outcome", "failed"}}).Increment();
    spdlog::warn("digest of {} record(s) not sent ({}); retrying next window", covered,
                 r.status ? "HTTP " + std::to_string(r.status) : r.error);
    return 0;
  }
  // When more than 1000 were waiting, the rest are summarized by count in this message.
  store_.mark_digested(last_id);
  digests_->Add({{"outcome", "sent"}}).Increment();
  spdlog::info("digest sent: {} dead-lettered record(s)", covered);
  return covered;
}

void Escalator::start_digest() {
  if (config_.digest_url.empty()) return;
  const auto every = std::min<std::chrono::milliseconds>(config_.digest_window / 4 + std::chrono::milliseconds(50),
                                                         std::chrono::seconds(5));
  digest_ = std::make_unique<service::PeriodicTask>("digest", every, [this] {
    digest_once();
    return false;
  });
}

void Escalator::stop_digest() {
  if (digest_) digest_->stop();
}

}  // namespace agentline::dlq
