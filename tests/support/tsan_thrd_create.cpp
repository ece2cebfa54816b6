// ThreadSanitizer in GCC 12 does not intercept the C11 thread API (<threads.h>) that
// librdkafka uses: its threads crash TSan ("SEGV ... SizeClassAllocator64LocalCache") and its
// mutexes and condition variables are invisible, so every hand-over through librdkafka looks
// like a race. Built into the test executables of TSan builds only (exported with
// ENABLE_EXPORTS so librdkafka binds to these), this routes the C11 calls to their pthread
// equivalents, which TSan intercepts. glibc's mtx_t and cnd_t wrap pthread's types.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace {
struct Start {
  thrd_start_t func;
  void* arg;
};
void* trampoline(void* p) {
  Start start = *static_cast<Start*>(p);
  std::free(p);
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(start.func(start.arg)));
}
}  // namespace

extern "C" int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = static_cast<Start*>(std::malloc(sizeof(Start)));
  if (start == nullptr) return thrd_nomem;
  *start = {func, arg};
  if (pthread_create(thr, nullptr, trampoline, start) != 0) {
    std::free(start);
    return thrd_error;
  }
  return thrd_success;
}

extern "C" int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  if (pthread_join(thr, &value) != 0) return thrd_error;
  if (res != nullptr) *res = static_cast<int>(reinterpret_cast<std::intptr_t>(value));
  return thrd_success;
}

extern "C" int thrd_detach(thrd_t thr) { return pthread_detach(thr) == 0 ? thrd_success : thrd_error; }

namespace {
pthread_mutex_t* native(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* native(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }
int result(int rc) {
  return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : rc == EBUSY ? thrd_busy : thrd_error;
}
}  // namespace

extern "C" int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = pthread_mutex_init(native(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return result(rc);
}
extern "C" int mtx_lock(mtx_t* m) { return result(pthread_mutex_lock(native(m))); }
extern "C" int mtx_trylock(mtx_t* m) { return result(pthread_mutex_trylock(native(m))); }
extern "C" int mtx_timedlock(mtx_t* m, const struct timespec* ts) {
  return result(pthread_mutex_timedlock(native(m), ts));
}
extern "C" int mtx_unlock(mtx_t* m) { return result(pthread_mutex_unlock(native(m))); }
extern "C" void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(native(m)); }
extern "C" int cnd_init(cnd_t* c) { return result(pthread_cond_init(native(c), nullptr)); }
extern "C" int cnd_signal(cnd_t* c) { return result(pthread_cond_signal(native(c))); }
extern "C" int cnd_broadcast(cnd_t* c) { return result(pthread_cond_broadcast(native(c))); }
extern "C" int cnd_wait(cnd_t* c, mtx_t* m) { return result(pthread_cond_wait(native(c), native(m))); }
extern "C" int cnd_timedwait(cnd_t* c, mtx_t* m, const struct timespec* ts) {
  return result(pthread_cond_timedwait(native(c), native(m), ts));
}
extern "C" void cnd_destroy(cnd_t* c) { pthread_cond_destroy(native(c)); }
