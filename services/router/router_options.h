#pragma once
// The router's own options (the common set is ServiceHost's).
#include <chrono>
#include <string>

#include "event_router.h"

namespace agentline::config {
class OptionSet;
}

namespace agentline::router {

struct RouterOptions {
  std::string routes_file;  // empty: the built-in table
  int dedup_window = 100000;
  bool no_job_checks = false;
  JobCheckOptions job_checks;
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);  // 0: kept forever
  // Job progress coalesced per key over this interval (coalescing_publisher.h); 0: every step.
  std::chrono::milliseconds progress_interval{100};
  bool reviews = false;
  std::string review_rules_file;  // implies reviews

  void bind(config::OptionSet& options);
};

}  // namespace agentline::router
