#pragma once
// The options of a circuit breaker, bound once for every service that guards a call with one:
// `--<prefix>failure-rate`, `-minimum-calls`, `-window`, `-open-wait-ms`, `-max-open-wait-ms`,
// `-slow-call-ms`, `-probes`, `-successes`. Defaults are `config`'s values when bound (each
// service sets its own first); the values are validated after parsing (a bad one is a
// configuration error, exit 2).
#include <string>

#include "agentline/config/options.h"
#include "agentline/resilience/circuit_breaker.h"

namespace agentline::resilience {

// `guards` names what the breaker protects, for the help text ("the LLM", "the target").
void bind_breaker_options(config::OptionSet& options, const std::string& prefix, CircuitBreakerConfig& config,
                          const std::string& guards);

}  // namespace agentline::resilience
