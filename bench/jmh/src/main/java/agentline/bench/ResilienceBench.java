package agentline.bench;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.ratelimiter.RateLimiter;
import io.github.resilience4j.ratelimiter.RateLimiterConfig;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/** The same operations as bench/resilience_bench.cpp, on resilience4j. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Benchmark)
public class ResilienceBench {
  CircuitBreaker countNoTiming;
  CircuitBreaker defaults;
  CircuitBreaker timeBased;
  CircuitBreaker open;
  RateLimiter limiter;

  @Setup
  public void setup() {
    // Like Agentline's count-based window without slow-call timing: a huge slow threshold.
    countNoTiming = CircuitBreaker.of("count", CircuitBreakerConfig.custom()
        .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED).slidingWindowSize(100)
        .slowCallDurationThreshold(Duration.ofDays(1)).build());
    defaults = CircuitBreaker.ofDefaults("defaults");
    timeBased = CircuitBreaker.of("time", CircuitBreakerConfig.custom()
        .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.TIME_BASED).slidingWindowSize(60).build());
    open = CircuitBreaker.ofDefaults("open");
    open.transitionToForcedOpenState();
    limiter = RateLimiter.of("limiter", RateLimiterConfig.custom().limitForPeriod(Integer.MAX_VALUE)
        .limitRefreshPeriod(Duration.ofNanos(1)).timeoutDuration(Duration.ZERO).build());
  }

  private static boolean call(CircuitBreaker cb) {
    if (!cb.tryAcquirePermission()) return false;
    cb.onSuccess(0, TimeUnit.NANOSECONDS);
    return true;
  }

  @Benchmark public boolean breakerCountNoTiming() { return call(countNoTiming); }

  @Benchmark public boolean breakerDefaults() {
    if (!defaults.tryAcquirePermission()) return false;
    long start = defaults.getCurrentTimestamp();
    defaults.onSuccess(defaults.getCurrentTimestamp() - start, defaults.getTimestampUnit());
    return true;
  }

  @Benchmark public boolean breakerTimeBased() {
    if (!timeBased.tryAcquirePermission()) return false;
    long start = timeBased.getCurrentTimestamp();
    timeBased.onSuccess(timeBased.getCurrentTimestamp() - start, timeBased.getTimestampUnit());
    return true;
  }

  @Benchmark public boolean breakerRejected() { return open.tryAcquirePermission(); }

  @Benchmark public boolean rateLimiterAcquire() { return limiter.acquirePermission(); }
}
