#pragma once
// outbox-uploader's own options: the outbox file, the target and its secrets, retries, the
// adaptive batch, the target's circuit breaker, --parent-wait and the free-space guard. bind()
// adds them to the service's OptionSet; after parsing, resolve() fills the defaults that depend
// on --state-dir and reads the secrets (std::invalid_argument / ConfigError when incomplete).
#include <string>

#include "agentline/config/options.h"
#include "targets.h"
#include "uploader.h"

namespace agentline::outbox {

struct UploaderOptions {
  std::string db;  // default: <state-dir>/outbox-uploader.db
  TargetConfig target;
  UploaderConfig uploader;
  std::string webhook_token_file;
  std::string ado_pat_file;
  int min_free_mb = 64;

  void bind(config::OptionSet& options);
  void resolve(const std::string& state_dir);
};

}  // namespace agentline::outbox
