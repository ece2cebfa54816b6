#include "router_options.h"

#include "agentline/config/options.h"

namespace agentline::router {

void RouterOptions::bind(config::OptionSet& o) {
  o.add("routes", &routes_file, "Routing table file (JSON); empty: the built-in table");
  o.add("dedup-window", &dedup_window, "Event ids remembered to drop redeliveries");
  o.add_flag("no-job-checks", &no_job_checks,
             "Deliver a planned job's files as they pass, without checking the job as a whole");
  o.add_flag("deliver-before-job-checks", &job_checks.deliver_before,
             "Deliver files as they pass; the job is still checked as a whole, and marked if it fails");
  o.add("job-retention", &retention,
        "Finished jobs are kept this long after their last change (500ms, 30s, 90m, 12h, 7d), then "
        "tombstoned on jobs.progress and jobs.plans and forgotten; 0: kept forever",
        std::chrono::seconds(1));
  o.add("progress-interval-ms", &progress_interval,
        "Job progress records wait this long, and only the latest of each job and file is published; 0: a record "
        "per step");
  o.add_flag("reviews", &reviews,
             "Review passed files by model, with the built-in review rules (docs/qa.md); off by default");
  o.add("review-rules", &review_rules_file, "Review rules file (JSON); implies --reviews");
}

}  // namespace agentline::router
