#include "uploader.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "agentline/cache/result_cache.h"
#include "agentline/events/record.h"
#include "agentline/events/timestamps.h"
#include "agentline/kafka/producer.h"
#include "agentline/observability/metric_families.h"
#include "agentline/observability/metric_registration.h"

namespace agentline::outbox {
namespace {

// Event ids are deterministic, so a re-publication after a crash is dropped by the router;
// they name the group and target, since uploaders of several targets deliver the same item.
std::string event_id(const char* prefix, const std::string& target, const OutboxItem& item, bool with_round) {
  std::string id = std::string(prefix) + cache::sha256_hex(target + "\n" + item.staging_key).substr(0, 32);
  if (with_round) id += "-" + std::to_string(item.rounds);
  return id;
}

std::string error_of(const UploadOutcome& outcome) {
  return outcome.error_class + ": " + kafka::bounded_message(outcome.error, 1000);
}

}  // namespace

Uploader::Uploader(UploaderConfig config, OutboxStore& store, Target& target, std::shared_ptr<kafka::Producer> producer,
                   const kafka::TopicCatalog& catalog, prometheus::Registry& registry, std::string service,
                   std::string group)
    : config_(std::move(config)),
      store_(store),
      target_(target),
      producer_(std::move(producer)),
      dead_letters_(std::move(service), group, {}, catalog.dlq_topic()),
      events_topic_(catalog.topic("events")),
      group_(group),
      retry_(config_.retry),
      batcher_(config_.batch),
      breaker_("target-" + target.name(), config_.breaker),
      uploaders_("uploads", [&] {
        resilience::WorkerPoolConfig pool;
        pool.min_threads = 0;
        pool.max_threads = std::max(1, config_.concurrency);
        pool.idle_timeout = std::chrono::minutes(1);
        return pool;
      }()) {
  staged_ = &observability::counter(
      registry, "agentline_outbox_staged_total",
      "deploy.requests records staged in the outbox, by outcome (staged, duplicate, rearmed, reannounced)");
  uploads_ = &observability::counter(
      registry, "agentline_outbox_uploads_total",
      "Upload attempts, by target and outcome (uploaded, already_there, retry, failed, not_permitted)");
  published_ = &observability::counter(registry, "agentline_outbox_events_total",
                                       "Events published by the outbox, by type (UPLOADED, UPLOAD_FAILED, dlq)");
  duration_ = &observability::histogram(registry, "agentline_outbox_upload_duration_seconds", "Time one upload took")
                   .Add({{"target", target_.name()}},
                        prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  end_to_end_ = &observability::histogram(registry, "agentline_end_to_end_seconds",
                                          "From a task's entry into the pipeline (prioritized) to its file's delivery")
                     .Add({{"target", target_.name()}}, prometheus::Histogram::BucketBoundaries{
                                                            0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600});
  handed_over_ =
      &observability::counter(registry, "agentline_outbox_handed_over_total",
                              "Staged items sent back to deploy.requests when their partition left this replica")
           .Add({});
  batch_size_ =
      &observability::gauge(registry, "agentline_outbox_batch_size", "Items the adaptive batcher claims per batch now")
           .Add({});
}

Uploader::~Uploader() { stop(); }

namespace {
// The headers the item's deploy.requests record came with (stored as [[name, value], ...]).
kafka::Headers headers_of(const OutboxItem& item) {
  kafka::Headers out;
  const auto headers = nlohmann::json::parse(item.headers_json, nullptr, false);
  if (!headers.is_array()) return out;
  for (const auto& h : headers) {
    if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) out.push_back({h[0], h[1]});
  }
  return out;
}
}  // namespace

int Uploader::hand_over(const std::vector<std::pair<std::string, std::int32_t>>& revoked,
                        std::chrono::milliseconds wait) {
  handing_over_ = true;
  struct Resume {
    std::atomic<bool>& flag;
    ~Resume() { flag = false; }
  } resume{handing_over_};
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (store_.in_flight_from(revoked) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto items = store_.unfinished_from(revoked);
  if (items.empty()) return 0;
  std::vector<std::atomic<int>> acked(items.size());  // 1: Kafka has it, -1: it does not
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    kafka::OutgoingRecord r;
    r.topic = item.source_topic;
    r.partition = item.source_partition;
    r.key = item.job_id;
    r.value = item.message;
    r.headers = headers_of(item);
    kafka::set_header(r.headers, kafka::headers::kHandedOver, group_);
    producer_->send(r, [&acked, i](const kafka::DeliveryReport& report) { acked[i] = report.ok ? 1 : -1; });
  }
  producer_->flush(std::chrono::seconds(30));
  int handed = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (acked[i] != 1) continue;  // kept: uploaded from here, or handed over at the next revocation
    store_.remove(items[i].seq);
    ++handed;
  }
  handed_over_->Increment(handed);
  spdlog::info("handed over {} staged item(s) of {} revoked partition(s) to their next owner ({} kept)", handed,
               revoked.size(), items.size() - static_cast<std::size_t>(handed));
  return handed;
}

std::optional<kafka::Failure> Uploader::stage(const kafka::InboundRecord& record) {
  nlohmann::json message;
  if (auto failure = events::MessageValidator::parse(record.value, message)) return failure;
  if (auto failure = validator_.validate_event(message)) return failure;
  const std::string type = message["type"];
  const auto& payload = message["payload"];
  OutboxItem item;
  item.job_id = message["job_id"];
  item.task_id = message["task_id"];
  if (type == "QA_PASSED") {
    if (!payload.contains("content") || !payload["content"].is_string()) {
      return kafka::Failure::bad_input(
          "missing_content", "QA_PASSED for " + payload.value("path", std::string("?")) + " carries no content");
    }
    item.kind = "file";
    item.item_id = item.task_id;
    item.path = payload["path"];
    item.title = item.path;
    item.content = payload["content"];
    item.content_sha256 = cache::sha256_hex(item.content);
    const auto attempt = payload.find("fix_attempt");
    item.first_version = attempt == payload.end() || !attempt->is_number_integer() || attempt->get<int>() == 0;
  } else if (type == "DEPLOY_ITEM") {
    item.kind = payload["kind"];
    item.item_id = payload["item_id"];
    item.title = payload["title"];
    item.content = payload.value("description", "");
  } else {
    return kafka::Failure::bad_input("unexpected_message_type",
                                     "deploy.requests carries QA_PASSED or DEPLOY_ITEM, not " + type);
  }
  if (payload.contains("parent_id") && payload["parent_id"].is_string()) {
    item.parent_id = payload["parent_id"].get<std::string>();
    if (*item.parent_id == item.item_id)
      return kafka::Failure::bad_input("schema_violation", "an item cannot be its own parent");
  }
  item.staging_key = item.job_id + "/" + item.item_id;
  item.message = record.value;
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& h : record.headers) headers.push_back({h.key, h.value});
  item.headers_json = headers.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  item.source_topic = record.topic;
  item.source_partition = record.partition;
  item.source_offset = record.offset;
  item.source_timestamp_ms = record.timestamp_ms;
  StageOutcome outcome;
  std::string taken_by;
  try {
    outcome = store_.stage(item, record.header(kafka::headers::kReplayCount).has_value(), &taken_by);
  } catch (const storage::SqliteError& e) {
    // A full disk or a locked file: the offset must not move; hold consumption a while.
    return kafka::Failure::backoff("outbox_unavailable", e.what(), std::chrono::seconds(5));
  }
  if (outcome == StageOutcome::kPathTaken) {
    staged_->Add({{"outcome", "duplicate_path"}}).Increment();
    return kafka::Failure::bad_input("duplicate_path", "job " + item.job_id + " already has " + item.path +
                                                           " from task " + taken_by + "; task " + item.task_id +
                                                           " may not write it too");
  }
  const char* label = outcome == StageOutcome::kStaged        ? "staged"
                      : outcome == StageOutcome::kRearmed     ? "rearmed"
                      : outcome == StageOutcome::kReannounced ? "reannounced"
                      : outcome == StageOutcome::kSuperseded  ? "superseded"
                                                              : "duplicate";
  staged_->Add({{"outcome", label}}).Increment();
  if (outcome == StageOutcome::kReannounced || outcome == StageOutcome::kSuperseded) events_owed();
  if (outcome != StageOutcome::kDuplicate && passes_) {
    {
      std::lock_guard lock(mu_);
      staged_since_pass_ = true;
    }
    finished_.notify_all();
    passes_->wake();
  }
  return std::nullopt;
}

void Uploader::start() {
  const int recovered = store_.recover_in_flight();
  if (recovered > 0)
    spdlog::warn("{} item(s) were in flight when the last run stopped; reconciling them with the target", recovered);
  passes_ = std::make_unique<service::PeriodicTask>("upload pass", config_.idle_poll, [this] { return pass(); });
  std::lock_guard lock(announcements_->mu);
  announcements_->passes = passes_.get();
}

void Uploader::stop() {
  if (stop_.exchange(true) || !passes_) return;
  {
    std::lock_guard lock(announcements_->mu);
    announcements_->passes = nullptr;
  }
  wake_pass();
  passes_->stop();
  try {
    // The upload threads release what they have not started (stop_) and finish what they have.
    {
      std::unique_lock lock(mu_);
      finished_.wait(lock, [&] { return outstanding_ == 0; });
    }
    uploaders_.stop();  // their threads end before this object's window does
    pass();
    send_owed_events();
    producer_->flush(std::chrono::seconds(30));
    std::vector<std::int64_t> acknowledged;
    {
      std::lock_guard lock(announcements_->mu);
      acknowledged.swap(announcements_->acknowledged);
    }
    store_.events_published(acknowledged);
  } catch (const std::exception& e) {
    spdlog::error("settling and publishing at stop failed: {}", e.what());
  }
}

bool Uploader::pass() {
  // Orphans are looked for once a second, not on every pass (the query reads every pending child).
  const auto started_ms = events::now_ms();
  if (started_ms >= next_orphan_check_ms_) {
    next_orphan_check_ms_ = started_ms + 1000;
    if (const int n = store_.fail_orphans(started_ms - config_.parent_wait.count(), started_ms)) {
      spdlog::warn("{} item(s) failed: their parent failed or never arrived within --parent-wait", n);
      events_owed();
    }
  }
  uploaders_.tick();
  std::vector<OutboxStore::Settlement> settled;
  std::vector<std::int64_t> acknowledged;
  // Claimed ahead by one batch, so the uploads go on while a pass's transaction waits and syncs.
  const int batch = batcher_.batch_size();
  const int window = 2 * batch;
  int room = 0;
  {
    // While uploads run, a transaction is worth its sync of the disk once half the window has
    // finished, when all of it has, when an upload has waited kSettleWait to be settled, or when
    // newly staged items fit.
    constexpr auto kSettleWait = std::chrono::milliseconds(10);
    std::unique_lock lock(mu_);
    const int refill = std::max(1, batch / 2);
    const auto ready = [&] {
      return stop_ || outstanding_ == 0 || static_cast<int>(settled_.size()) >= refill ||
             (staged_since_pass_ && window - outstanding_ >= refill);
    };
    const auto give_up = std::chrono::steady_clock::now() + config_.idle_poll;
    while (!ready()) {
      const auto until = settled_.empty() ? give_up : std::min(give_up, first_settled_ + kSettleWait);
      if (finished_.wait_until(lock, until) == std::cv_status::timeout && std::chrono::steady_clock::now() >= until)
        break;
    }
    settled.swap(settled_);
    staged_since_pass_ = false;
    room = window - outstanding_;
  }
  const auto now = events::now_ms();
  const bool may_claim = !stop_ && !handing_over_ && now >= paused_until_ms_.load() &&
                         breaker_.retry_after() <= resilience::Duration{0};  // open: wait for the probe time
  {
    std::lock_guard lock(announcements_->mu);
    acknowledged.swap(announcements_->acknowledged);
  }
  std::vector<OutboxItem> claimed;
  try {
    claimed = store_.pass(settled, acknowledged, may_claim ? room : 0, now);
  } catch (...) {
    // Not written (a full disk, a locked file): kept for the next pass.
    {
      std::lock_guard lock(mu_);
      settled_.insert(settled_.end(), settled.begin(), settled.end());
    }
    std::lock_guard lock(announcements_->mu);
    announcements_->acknowledged.insert(announcements_->acknowledged.end(), acknowledged.begin(), acknowledged.end());
    throw;
  }
  if (!settled.empty()) events_owed();
  if (!acknowledged.empty()) {
    std::lock_guard lock(announcements_->mu);
    for (const auto seq : acknowledged) announcements_->on_their_way.erase(seq);
  }
  const auto at = std::chrono::steady_clock::now();
  if (!settled.empty()) batcher_.record(static_cast<int>(settled.size()), at - window_since_);
  {
    std::lock_guard lock(mu_);
    if (!settled.empty() || outstanding_ == 0) window_since_ = at;
    outstanding_ += static_cast<int>(claimed.size());
    for (auto& item : claimed) claimed_.push_back(std::move(item));
    start_uploaders_locked();
  }
  batch_size_->Set(batcher_.batch_size());
  send_owed_events();
  std::lock_guard lock(mu_);
  return outstanding_ > 0 || !settled_.empty();
}

void Uploader::wake_pass() {
  { std::lock_guard lock(mu_); }  // a pass between its check and its wait gets the notification
  finished_.notify_all();
}

void Uploader::events_owed() {
  std::lock_guard lock(announcements_->mu);
  announcements_->owed = true;
}

void Uploader::start_uploaders_locked() {
  const int wanted = std::min(std::max(1, config_.concurrency), static_cast<int>(claimed_.size()));
  while (running_uploaders_ < wanted) {
    ++running_uploaders_;
    if (!uploaders_.submit([this] { upload_claimed(); })) {
      --running_uploaders_;
      break;
    }
  }
  if (running_uploaders_ == 0 && !claimed_.empty()) {
    // The pool refused (stopping): nothing is attempted; the items are pending again.
    for (const auto& item : claimed_)
      settled_.push_back({.kind = OutboxStore::Settlement::Kind::kReleased, .seq = item.seq});
    outstanding_ -= static_cast<int>(claimed_.size());
    claimed_.clear();
  }
}

void Uploader::upload_claimed() {
  for (;;) {
    OutboxItem item;
    {
      std::lock_guard lock(mu_);
      if (claimed_.empty()) {
        --running_uploaders_;
        return;
      }
      item = std::move(claimed_.front());
      claimed_.pop_front();
    }
    auto settlement = upload_one(item);
    {
      std::lock_guard lock(mu_);
      if (settled_.empty()) first_settled_ = std::chrono::steady_clock::now();
      settled_.push_back(std::move(settlement));
      --outstanding_;
    }
    finished_.notify_all();
  }
}

OutboxStore::Settlement Uploader::upload_one(const OutboxItem& item) {
  using Settlement = OutboxStore::Settlement;
  if (stop_ || events::now_ms() < paused_until_ms_.load())
    return {.kind = Settlement::Kind::kReleased, .seq = item.seq};
  auto permit = breaker_.try_acquire();
  if (!permit) {
    uploads_->Add({{"target", target_.name()}, {"outcome", "not_permitted"}}).Increment();
    return {.kind = Settlement::Kind::kReleased, .seq = item.seq};
  }
  const auto t0 = std::chrono::steady_clock::now();
  UploadOutcome outcome;
  try {
    outcome = target_.upload(item);
  } catch (const std::exception& e) {
    outcome = UploadOutcome::failed(UploadOutcome::Kind::kRetry, "exception", e.what());
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  // A 429 says "slower", not "broken": it does not count against the breaker.
  if (outcome.kind == UploadOutcome::Kind::kRetry) {
    if (outcome.error_class == "http_429") {
      permit.ignore();
    } else {
      permit.failure();
    }
  } else {
    permit.success();
  }
  return settle(item, outcome, took);
}

OutboxStore::Settlement Uploader::settle(const OutboxItem& item, const UploadOutcome& outcome,
                                         std::chrono::steady_clock::duration took) {
  duration_->Observe(std::chrono::duration<double>(took).count());
  const std::string target = target_.name();
  const int attempts = item.attempts + 1;
  const auto now = events::now_ms();
  using Kind = UploadOutcome::Kind;
  OutboxStore::Settlement settled;
  settled.seq = item.seq;
  settled.attempts = attempts;
  if (outcome.kind == Kind::kUploaded) {
    settled.kind = OutboxStore::Settlement::Kind::kUploaded;
    settled.remote_id = outcome.remote_id;
    settled.remote_url = outcome.remote_url;
    if (item.kind == "file" && !outcome.already_there) {
      const auto message = nlohmann::json::parse(item.message, nullptr, false);
      if (message.is_object() && message["payload"].contains("submitted_at_ms") &&
          message["payload"]["submitted_at_ms"].is_number_integer()) {
        const auto since = now - message["payload"]["submitted_at_ms"].get<std::int64_t>();
        if (since >= 0) end_to_end_->Observe(static_cast<double>(since) / 1000.0);
      }
    }
    uploads_->Add({{"target", target}, {"outcome", outcome.already_there ? "already_there" : "uploaded"}}).Increment();
    if (outcome.already_there)
      spdlog::info("{} was already at the target ({}): not uploaded again", item.staging_key, outcome.remote_id);
    return settled;
  }
  settled.error = error_of(outcome);
  if (outcome.kind == Kind::kRetry && retry_.allows(attempts)) {
    if (outcome.error_class == "http_429" && outcome.retry_after) {
      paused_until_ms_ = std::max(paused_until_ms_.load(), now + outcome.retry_after->count());
    }
    const auto delay = retry_.delay(attempts, resilience::Duration{0}, outcome.retry_after);
    settled.kind = OutboxStore::Settlement::Kind::kRetry;
    settled.next_attempt_ms = now + std::chrono::duration_cast<std::chrono::milliseconds>(delay).count();
    uploads_->Add({{"target", target}, {"outcome", "retry"}}).Increment();
    return settled;
  }
  spdlog::error("giving up on {} after {} attempt(s): {}", item.staging_key, attempts, settled.error);
  settled.kind = OutboxStore::Settlement::Kind::kFailed;
  uploads_->Add({{"target", target}, {"outcome", "failed"}}).Increment();
  return settled;
}

void Uploader::send_owed_events() {
  const auto shared = announcements_;
  std::size_t on_their_way = 0;
  {
    std::lock_guard lock(shared->mu);
    if (!shared->owed) return;
    shared->owed = false;
    on_their_way = shared->on_their_way.size();
  }
  // Those on their way are still owed until marked: read past them and skip them.
  const int limit = static_cast<int>(256 + on_their_way);
  const auto owed = store_.owed_events(limit);
  if (static_cast<int>(owed.size()) == limit) events_owed();  // more than one read holds
  struct Pending {
    std::int64_t seq;
    std::atomic<int> outstanding{0};
    std::atomic<bool> failed{false};
  };
  for (const auto& item : owed) {
    {
      std::lock_guard lock(shared->mu);
      if (!shared->on_their_way.insert(item.seq).second) continue;
    }
    auto p = std::make_shared<Pending>();
    p->seq = item.seq;
    const bool uploaded = item.status == "uploaded";
    nlohmann::json payload = {{"target", target_.name()}};
    if (!item.path.empty()) payload["path"] = item.path;
    payload["kind"] = item.kind;
    payload["item_id"] = item.item_id;
    if (uploaded) {
      payload["remote_id"] = item.remote_id.value_or("");
      if (item.remote_url && !item.remote_url->empty()) payload["remote_url"] = *item.remote_url;
    } else {
      payload["error"] = item.last_error;
      payload["attempts"] = item.attempts;
    }
    nlohmann::json event = {{"id", event_id(uploaded ? "up-" : "uf-", group_ + "/" + target_.name(), item, !uploaded)},
                            {"task_id", item.task_id},
                            {"job_id", item.job_id},
                            {"type", uploaded ? "UPLOADED" : "UPLOAD_FAILED"},
                            {"created_at", events::now_iso8601()},
                            {"payload", payload}};
    std::vector<kafka::OutgoingRecord> records;
    records.push_back(events::make_record(events_topic_, item.task_id, event, nullptr,
                                          validator_.event_schema_id(event["type"].get<std::string>())));
    if (!uploaded) {
      // The failed item's own deploy.requests record goes to the DLQ, with its origin in the
      // headers: a replay of it re-arms the item (and nothing is generated again).
      kafka::InboundRecord original;
      original.topic = item.source_topic;
      original.partition = item.source_partition;
      original.offset = item.source_offset;
      original.timestamp_ms = item.source_timestamp_ms;
      original.key = item.job_id;
      original.value = item.message;
      original.headers = headers_of(item);

      // A child given up for its parent (fail_orphans) says so; every other failure is the target's.
      const char* error_class = item.last_error.rfind("parent_missing:", 0) == 0 ? "parent_missing" : "upload_failed";
      records.push_back(
          dead_letters_.route(original, kafka::Failure::bad_input(error_class, item.last_error), events::now_ms()));
    }
    p->outstanding = static_cast<int>(records.size());
    for (auto& rec : records) {
      const std::string type = rec.topic == events_topic_ ? event["type"].get<std::string>() : "dlq";
      producer_->send(rec, [shared, published = published_, p, type](const kafka::DeliveryReport& report) {
        if (!report.ok) {
          p->failed = true;
        } else {
          published->Add({{"type", type}}).Increment();
        }
        if (--p->outstanding > 0) return;
        std::lock_guard lock(shared->mu);
        if (p->failed) {
          shared->on_their_way.erase(p->seq);  // owed still: sent again at a later pass
          shared->owed = true;
          spdlog::warn("an outbox event was not acknowledged by Kafka ({}); it is published again later", report.error);
          return;
        }
        shared->acknowledged.push_back(p->seq);
        // With no uploads running no pass would come soon: one marks it now.
        if (shared->passes) shared->passes->wake();
      });
    }
  }
}

void Uploader::append_metrics(std::vector<prometheus::MetricFamily>& families) {
  auto& items = observability::family(families, "agentline_outbox_items", "Items in the outbox, by status",
                                      prometheus::MetricType::Gauge);
  try {
    for (const auto& [status, count] : store_.summary("")) {
      observability::add_sample(items, {{"status", status}}, static_cast<double>(count));
    }
  } catch (const std::exception& e) {
    spdlog::warn("outbox metrics: {}", e.what());
  }
  breaker_.append_metrics(families);
}

std::string Uploader::stats_json() {
  const auto b = breaker_.snapshot();
  const auto s = batcher_.stats();
  nlohmann::json j = {
      {"target", target_.name()},
      {"items", store_.summary("")},
      {"breaker", {{"state", std::string(resilience::to_string(b.state))}, {"failure_rate", b.failure_rate}}},
      {"batch", {{"size", s.batch_size}, {"batches", s.batches}, {"items", s.items}, {"average", s.average_batch}}}};
  return j.dump();
}

}  // namespace agentline::outbox
