#include "agentline/resilience/breaker_options.h"

#include <algorithm>

namespace agentline::resilience {

void bind_breaker_options(config::OptionSet& o, const std::string& prefix, CircuitBreakerConfig& c,
                          const std::string& guards) {
  const std::string what = "Circuit breaker of " + guards + ": ";
  o.add(prefix + "failure-rate", &c.failure_rate_threshold, what + "failure rate (percent) that opens it");
  o.add(prefix + "minimum-calls", &c.minimum_calls, what + "calls before the rate counts");
  o.add(prefix + "window", &c.window_size, what + "calls in the sliding window");
  o.add(prefix + "open-wait-ms", &c.open_wait, what + "time open before probing");
  o.add(prefix + "max-open-wait-ms", &c.max_open_wait, what + "longest time open (raised to the open wait)");
  o.add(prefix + "slow-call-ms", &c.slow_call_duration, what + "a call at least this long is slow (0: off)");
  o.add(prefix + "probes", &c.half_open_max_probes, what + "concurrent probes while half-open");
  o.add(prefix + "successes", &c.half_open_successes_to_close, what + "successful probes that close it");
  o.after_parse([&c] {
    c.max_open_wait = std::max(c.max_open_wait, c.open_wait);
    c.validate();
  });
}

}  // namespace agentline::resilience
