#pragma once
// The router's state across restarts and replicas: job progress (jobs.progress) and the
// planned jobs' release state (jobs.plans, dependency_gate.h) are read back at start, then
// followed for other replicas' changes; job checks that were out when a router stopped are
// asked for again (docs/qa.md); finished jobs older than the retention are tombstoned on both
// topics and forgotten, looked for every quarter of the retention (at least every second, at
// most every minute).
#include <chrono>
#include <memory>

#include "agentline/kafka/client_config.h"
#include "agentline/kafka/producer.h"
#include "agentline/kafka/topic_catalog.h"
#include "agentline/kafka/topic_follower.h"
#include "agentline/service/periodic_task.h"
#include "event_router.h"

namespace agentline::router {

class RouterState {
 public:
  RouterState(EventRouter& router, const kafka::KafkaSettings& settings, const kafka::TopicCatalog& catalog,
              std::chrono::milliseconds retention);
  ~RouterState();  // stops following and retention

  // Reads both topics back, follows them, resends the job checks that were out, and starts
  // retention. Throws when the topics cannot be read within a minute.
  void restore();
  // Tombstones the finished jobs last changed before now - retention. Returns how many.
  int expire_now();

 private:
  void load_progress(const kafka::InboundRecord& r);
  void load_plan(const kafka::InboundRecord& r);

  EventRouter& router_;
  std::chrono::milliseconds retention_;
  kafka::Producer producer_;  // records written outside a handler
  kafka::TopicFollower progress_;
  kafka::TopicFollower plans_;
  std::unique_ptr<service::PeriodicTask> retention_task_;
};

}  // namespace agentline::router
