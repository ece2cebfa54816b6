#pragma once
// A mutex the compiler checks: data marked GUARDED_BY(m) may be touched only while `m` is held,
// and a function marked REQUIRES(m) only called while it is. Clang checks it
// (-Wthread-safety, on in every clang build: the sanitizer and fuzz builds); other compilers
// ignore the marks. libstdc++'s std::mutex carries none, hence this wrapper.
//
// Waiting on a condition: write the loop out (`while (!ready) lock.wait(cv);`) so the test of
// guarded data stays inside the function that holds the lock, where the check can see it.
#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define AGENTLINE_TSA(x) __attribute__((x))
#else
#define AGENTLINE_TSA(x)
#endif
#define CAPABILITY(x) AGENTLINE_TSA(capability(x))
#define SCOPED_CAPABILITY AGENTLINE_TSA(scoped_lockable)
#define GUARDED_BY(x) AGENTLINE_TSA(guarded_by(x))
#define REQUIRES(...) AGENTLINE_TSA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) AGENTLINE_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) AGENTLINE_TSA(release_capability(__VA_ARGS__))
#define EXCLUDES(...) AGENTLINE_TSA(locks_excluded(__VA_ARGS__))

namespace agentline::kafka::detail {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds `mu` from construction to destruction, unless unlock()ed in between; waits on condition
// variables with it.
class SCOPED_CAPABILITY Lock {
 public:
  explicit Lock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~Lock() RELEASE() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  void lock() ACQUIRE() { lock_.lock(); }
  void unlock() RELEASE() { lock_.unlock(); }
  // One wait: returns on a notification, a spurious wake-up or the deadline; the lock is held
  // again on return. The caller loops on its condition.
  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <typename Clock, typename Duration>
  bool wait_until(std::condition_variable& cv, const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv.wait_until(lock_, deadline) == std::cv_status::no_timeout;
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace agentline::kafka::detail
