#pragma once
// Delivery targets. A target uploads one item and classifies the outcome where it happens:
// uploaded (with the remote id), retry later (transient: no answer, 408/425/429/5xx, with any
// Retry-After), or permanent (the target refused the item; retrying cannot help).
//
// Each target makes a repeated upload of the same item harmless, because a crash may cut the
// uploader off between the upload and its bookkeeping:
//  - filesystem: the file is written to a temporary name and renamed into place; a file
//    already holding the same content counts as uploaded;
//  - webhook: every POST carries `Idempotency-Key: <staging key>`, so the receiver answers a
//    repeat with the item it already has;
//  - Azure DevOps: each work item is tagged with a hash of its staging key, and a WIQL query
//    for that tag runs before any create.
// Targets are thread-safe: a batch is uploaded by several threads.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "outbox_store.h"

namespace agentline::outbox {

struct UploadOutcome {
  enum class Kind { kUploaded, kRetry, kPermanent };
  Kind kind = Kind::kRetry;
  std::string remote_id;
  std::string remote_url;
  bool already_there = false;  // the target had it already (a repeat after a crash or redelivery)
  std::string error_class;     // "http_500", "timeout", "unsafe_path", ...
  std::string error;
  std::optional<std::chrono::milliseconds> retry_after;

  static UploadOutcome uploaded(std::string id, std::string url = {}, bool already_there = false) {
    UploadOutcome o;
    o.kind = Kind::kUploaded;
    o.remote_id = std::move(id);
    o.remote_url = std::move(url);
    o.already_there = already_there;
    return o;
  }
  static UploadOutcome failed(Kind kind, std::string error_class, std::string error,
                              std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    UploadOutcome o;
    o.kind = kind;
    o.error_class = std::move(error_class);
    o.error = std::move(error);
    o.retry_after = retry_after;
    return o;
  }
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;  // "filesystem", "webhook", "azure-devops"
  // `item.parent_remote_id` is set when the item has a parent.
  virtual UploadOutcome upload(const OutboxItem& item) = 0;
};

struct TargetConfig {
  std::string kind = "filesystem";  // filesystem | webhook | azure-devops
  // filesystem: files go to <root>/<job_id>/<path>; structural items to
  // <root>/<job_id>/.agentline/items/<item_id>.json.
  std::string output_root;
  // webhook
  std::string webhook_url;
  std::string webhook_token;  // sent as a bearer token when set (from env or a file)
  // azure-devops: https://dev.azure.com/<org>, the project, and a PAT (from env or a file)
  std::string ado_org_url;
  std::string ado_project;
  std::string ado_pat;
  std::string ado_file_type = "Task";
  std::string ado_api_version = "7.1";
  std::chrono::milliseconds timeout{10000};
};

// Throws std::invalid_argument when the configuration is incomplete.
std::unique_ptr<Target> make_target(const TargetConfig& config);

// The tag that marks a work item as the upload of `staging_key` (Azure DevOps).
std::string ado_tag(const std::string& staging_key);

}  // namespace agentline::outbox
