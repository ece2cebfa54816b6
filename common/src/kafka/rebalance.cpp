#include "kafka/rebalance.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <string_view>

namespace agentline::kafka::detail {

namespace {
void check(const char* call, rd_kafka_error_t* error) {
  if (error == nullptr) return;
  spdlog::error("{} failed: {}", call, rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
}
void check(const char* call, rd_kafka_resp_err_t err) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) spdlog::error("{} failed: {}", call, rd_kafka_err2str(err));
}
}  // namespace

void serve_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                     const RebalanceHandlers& handlers) {
  const char* protocol = rd_kafka_rebalance_protocol(rk);  // null outside a group
  const bool cooperative = protocol != nullptr && std::string_view(protocol) == "COOPERATIVE";
  try {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (handlers.assigned) handlers.assigned(parts);
      if (cooperative) {
        check("incremental assign", rd_kafka_incremental_assign(rk, parts));
      } else {
        check("assign", rd_kafka_assign(rk, parts));
      }
      if (parts->cnt > 0) check("resume", rd_kafka_resume_partitions(rk, parts));
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      if (handlers.revoking) handlers.revoking(parts);
    } else {
      spdlog::error("rebalance error: {}", rd_kafka_err2str(err));
    }
  } catch (const std::exception& e) {
    spdlog::error("rebalance handling failed: {}", e.what());
  }
  if (cooperative) {
    check("incremental unassign", rd_kafka_incremental_unassign(rk, parts));
  } else {
    check("unassign", rd_kafka_assign(rk, nullptr));
  }
}

}  // namespace agentline::kafka::detail
