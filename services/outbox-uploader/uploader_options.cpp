#include "uploader_options.h"

#include <algorithm>
#include <filesystem>

#include "agentline/resilience/breaker_options.h"

namespace agentline::outbox {

void UploaderOptions::bind(config::OptionSet& o) {
  o.add("db", &db, "Outbox database file (default: <state-dir>/outbox-uploader.db)");
  o.add("target", &target.kind, "Where items go: filesystem, webhook or azure-devops");
  o.add("output-root", &target.output_root,
        "filesystem: the output folder, files land in <root>/<job_id>/<path> (default: <state-dir>/delivered)");
  o.add("webhook-url", &target.webhook_url, "webhook: the URL items are POSTed to");
  o.add("webhook-token-file", &webhook_token_file,
        "webhook: file holding a bearer token (or env AGENTLINE_WEBHOOK_TOKEN)");
  o.add("ado-org-url", &target.ado_org_url, "azure-devops: https://dev.azure.com/<org>");
  o.add("ado-project", &target.ado_project, "azure-devops: the project");
  o.add("ado-pat-file", &ado_pat_file, "azure-devops: file holding the PAT (or env AGENTLINE_ADO_PAT)");
  o.add("ado-file-type", &target.ado_file_type, "azure-devops: work item type of a delivered file");
  o.add("upload-timeout-ms", &target.timeout, "Timeout of one upload call");
  uploader.concurrency = 0;
  o.add("upload-concurrency", &uploader.concurrency,
        "Uploads running at once (0: sized for the container: 4 per CPU, 64 MiB each)");
  o.add("max-attempts", &uploader.retry.max_attempts,
        "Attempts per item before it is marked failed (and dead-lettered)");
  o.add("retry-base-ms", &uploader.retry.base, "First retry delay (doubles per attempt, with jitter)");
  o.add("retry-max-ms", &uploader.retry.max_delay, "Longest retry delay");
  o.add("batch-min", &uploader.batch.min_batch, "Adaptive batcher: smallest batch");
  o.add("batch-max", &uploader.batch.max_batch, "Adaptive batcher: largest batch");
  resilience::bind_breaker_options(o, "breaker-", uploader.breaker, "the target");
  o.add("parent-wait", &uploader.parent_wait,
        "A child whose parent never arrives fails (parent_missing, dead-lettered) this long after it was staged "
        "(500ms, 30s, 90m, 12h, 7d); one whose parent failed fails at once",
        std::chrono::seconds(1));
  o.add("min-free-mb", &min_free_mb, "Not ready while the outbox's volume has less free space than this");
  o.after_parse([this] {
    uploader.retry.validate();
    uploader.batch.initial_batch =
        std::clamp(uploader.batch.initial_batch, uploader.batch.min_batch, uploader.batch.max_batch);
    uploader.batch.validate();
  });
}

void UploaderOptions::resolve(const std::string& state_dir) {
  if (db.empty()) db = (std::filesystem::path(state_dir) / "outbox-uploader.db").string();
  if (target.output_root.empty()) target.output_root = (std::filesystem::path(state_dir) / "delivered").string();
  target.webhook_token = config::read_secret(webhook_token_file, "AGENTLINE_WEBHOOK_TOKEN");
  target.ado_pat = config::read_secret(ado_pat_file, "AGENTLINE_ADO_PAT");
}

}  // namespace agentline::outbox
