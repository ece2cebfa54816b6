// Per-call cost of the resilience and cache library (Google Benchmark). Every benchmark also
// reports allocs_per_op, counted by the global operator new below.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "agentline/cache/result_cache.h"
#include "agentline/resilience/circuit_breaker.h"
#include "agentline/resilience/token_bucket.h"
#include "llm_rate_limiter.h"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace agentline;
using namespace std::chrono_literals;

// Allocations per iteration of this thread's loop (all threads' allocations / all iterations).
class AllocCounter {
 public:
  explicit AllocCounter(benchmark::State& state) : state_(state), start_(g_allocations.load()) {}
  ~AllocCounter() {
    state_.counters["allocs_per_op"] =
        benchmark::Counter(static_cast<double>(g_allocations.load() - start_) /
                               static_cast<double>(std::max<std::int64_t>(1, state_.iterations())),
                           benchmark::Counter::kAvgThreads);
  }

 private:
  benchmark::State& state_;
  std::uint64_t start_;
};

resilience::CircuitBreakerConfig count_no_timing() {
  resilience::CircuitBreakerConfig c;
  c.slow_call_duration = 0s;
  return c;
}

void BM_BreakerCountNoTiming(benchmark::State& state) {
  static resilience::CircuitBreaker cb("bench", count_no_timing());
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto permit = cb.try_acquire();
    benchmark::DoNotOptimize(static_cast<bool>(permit));
    permit.success();
  }
}
BENCHMARK(BM_BreakerCountNoTiming)->Threads(1)->Threads(2);

void BM_BreakerDefaults(benchmark::State& state) {
  static resilience::CircuitBreaker cb("bench", {});
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto permit = cb.try_acquire();
    benchmark::DoNotOptimize(static_cast<bool>(permit));
    permit.success();
  }
}
BENCHMARK(BM_BreakerDefaults)->Threads(1)->Threads(2);

void BM_BreakerTimeBased(benchmark::State& state) {
  resilience::CircuitBreakerConfig c;
  c.window = resilience::CircuitBreakerConfig::Window::kTimeBased;
  c.window_size = 60;
  static resilience::CircuitBreaker cb("bench", c);
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto permit = cb.try_acquire();
    benchmark::DoNotOptimize(static_cast<bool>(permit));
    permit.success();
  }
}
BENCHMARK(BM_BreakerTimeBased)->Threads(1);

void BM_BreakerRejected(benchmark::State& state) {
  static resilience::CircuitBreaker cb = [] {
    resilience::CircuitBreakerConfig c;
    return resilience::CircuitBreaker("bench", c);
  }();
  cb.force_open();
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto permit = cb.try_acquire();
    benchmark::DoNotOptimize(static_cast<bool>(permit));
  }
}
BENCHMARK(BM_BreakerRejected)->Threads(1);

void BM_TokenBucketAcquire(benchmark::State& state) {
  resilience::TokenBucket bucket(1e12, 1e12);
  AllocCounter allocs(state);
  for (auto _ : state) benchmark::DoNotOptimize(bucket.try_acquire().admitted);
}
BENCHMARK(BM_TokenBucketAcquire);

void BM_LlmLimiterAcquireComplete(benchmark::State& state) {
  devfix::LlmRateLimiter limiter("bench", {0, 0, 1000000});
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto lease = limiter.try_acquire(1000);
    benchmark::DoNotOptimize(static_cast<bool>(lease));
    lease.complete(500);
  }
}
BENCHMARK(BM_LlmLimiterAcquireComplete);

constexpr int kKeys = 8192;
std::vector<std::string> make_keys(std::uint64_t salt) {
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    char buf[65];
    std::snprintf(buf, sizeof buf, "%064llx", static_cast<unsigned long long>(i * 2654435761ULL + salt));
    keys.emplace_back(buf);
  }
  return keys;
}

template <cache::ResultCacheConfig::Policy P>
cache::ResultCache& shared_cache() {
  static cache::ResultCache c = [] {
    cache::ResultCacheConfig config;
    config.max_entries = 16384;
    config.policy = P;
    return cache::ResultCache(config);
  }();
  static bool filled = [] {
    for (const auto& k : make_keys(0)) c.put(k, "ns", "value");
    return true;
  }();
  (void)filled;
  return c;
}

template <cache::ResultCacheConfig::Policy P>
void BM_CacheHit(benchmark::State& state) {
  auto& c = shared_cache<P>();
  static const auto keys = make_keys(0);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 977;
  AllocCounter allocs(state);
  for (auto _ : state) benchmark::DoNotOptimize(c.get(keys[i++ & (kKeys - 1)]));
}
template <cache::ResultCacheConfig::Policy P>
void BM_CacheMiss(benchmark::State& state) {
  auto& c = shared_cache<P>();
  static const auto keys = make_keys(1);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 977;
  AllocCounter allocs(state);
  for (auto _ : state) benchmark::DoNotOptimize(c.get(keys[i++ & (kKeys - 1)]));
}
BENCHMARK(BM_CacheHit<cache::ResultCacheConfig::Policy::kWTinyLfu>)
    ->Name("BM_CacheHit/wtinylfu")
    ->Threads(1)
    ->Threads(2);
BENCHMARK(BM_CacheMiss<cache::ResultCacheConfig::Policy::kWTinyLfu>)
    ->Name("BM_CacheMiss/wtinylfu")
    ->Threads(1)
    ->Threads(2);
BENCHMARK(BM_CacheHit<cache::ResultCacheConfig::Policy::kLru>)->Name("BM_CacheHit/lru")->Threads(1)->Threads(2);
BENCHMARK(BM_CacheMiss<cache::ResultCacheConfig::Policy::kLru>)->Name("BM_CacheMiss/lru")->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
