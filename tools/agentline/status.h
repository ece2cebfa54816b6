#pragma once
// `agentline status [JOB]`: job progress as published by the router on jobs.progress.
#include <map>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "agentline/kafka/client_config.h"

namespace agentline::cli {

// The newest state of every job on `topic` (a compacted topic read whole).
std::map<std::string, nlohmann::json> read_progress(const kafka::KafkaSettings& settings, const std::string& topic);
// One job: a summary line, counts, and a line per file (status, fix attempts, reason).
void print_job(const nlohmann::json& job, std::ostream& out, bool files);

}  // namespace agentline::cli
