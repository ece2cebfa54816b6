#include "agentline/resilience/clock.h"

namespace agentline::resilience {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace agentline::resilience
