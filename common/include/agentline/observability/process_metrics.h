#pragma once
// The standard process metrics every Prometheus client exports (the names the Go and Java
// clients use), read from /proc at scrape time: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds, process_threads. Linux only; on a read error
// the family is left out rather than reported wrong.
#include <vector>

namespace prometheus {
struct MetricFamily;
}

namespace agentline::observability {

void append_process_metrics(std::vector<prometheus::MetricFamily>& families);

}  // namespace agentline::observability
