#include "agentline/resilience/worker_pool.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace agentline::resilience {

void WorkerPoolConfig::validate() const {
  if (min_threads < 0 || max_threads < 1 || max_threads < min_threads) {
    throw std::invalid_argument("worker pool: need 0 <= min_threads <= max_threads and max_threads >= 1");
  }
  if (scale_up_queue_depth < 1) throw std::invalid_argument("worker pool: scale_up_queue_depth must be at least 1");
  if (idle_timeout.count() < 0) throw std::invalid_argument("worker pool: idle_timeout must not be negative");
  if (max_queue < 1) throw std::invalid_argument("worker pool: max_queue must be at least 1");
}

WorkerPoolConfig WorkerPoolConfig::sized_for(const config::ContainerResources& resources,
                                             std::int64_t bytes_per_thread) {
  WorkerPoolConfig c;
  int by_cpu = std::max(2, static_cast<int>(std::ceil(resources.cpus * 4)));
  if (bytes_per_thread > 0 && resources.memory_bytes > 0) {
    by_cpu = std::min<std::int64_t>(by_cpu, std::max<std::int64_t>(1, resources.memory_bytes / bytes_per_thread));
  }
  c.max_threads = by_cpu;
  c.min_threads = 1;
  return c;
}

WorkerPool::WorkerPool(std::string name, WorkerPoolConfig config, const Clock& clock)
    : name_(std::move(name)), clock_(clock), config_((config.validate(), config)) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < config_.min_threads; ++i) spawn_locked();
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::spawn_locked() {
  workers_.emplace_back();
  Worker* w = &workers_.back();
  ++threads_;
  ++starting_;
  stats_.peak_threads = std::max(stats_.peak_threads, threads_);
  w->thread = std::thread([this, w] { run(w); });
}

bool WorkerPool::submit(std::function<void()> task) {
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= config_.max_queue) {
    ++stats_.rejected;
    return false;
  }
  queue_.push_back(std::move(task));
  // Tasks no thread is on its way to: an idle thread may not have woken up yet for the task
  // before this one, so counting idle threads alone would leave a burst queued behind one thread.
  const int on_the_way = idle_ + starting_ - retire_;
  const int unclaimed = static_cast<int>(queue_.size()) - std::max(0, on_the_way);
  if (threads_ < config_.min_threads || (unclaimed >= config_.scale_up_queue_depth && threads_ < config_.max_threads)) {
    spawn_locked();
    ++stats_.scale_ups;
  }
  cv_.notify_one();
  return true;
}

void WorkerPool::run(Worker* self) {
  std::unique_lock lock(mu_);
  --starting_;
  for (;;) {
    while (queue_.empty() && !stopping_ && retire_ == 0) {
      self->idle = true;
      self->idle_since = clock_.now();
      ++idle_;
      cv_.wait(lock);
      --idle_;
      self->idle = false;
    }
    if (queue_.empty() && (retire_ > 0 || stopping_)) {
      if (retire_ > 0) {
        --retire_;
        ++stats_.scale_downs;
      }
      --threads_;
      self->done = true;
      return;
    }
    auto task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    bool ok = true;
    try {
      task();
    } catch (...) {
      ok = false;
    }
    lock.lock();
    ++(ok ? stats_.completed : stats_.failed);
  }
}

void WorkerPool::join_finished(std::unique_lock<std::mutex>& lock) {
  std::vector<std::thread> finished;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done) {
      finished.push_back(std::move(it->thread));
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  lock.unlock();
  for (auto& t : finished) t.join();
  lock.lock();
}

void WorkerPool::tick() {
  std::unique_lock lock(mu_);
  const TimePoint now = clock_.now();
  int expired = 0;
  for (const auto& w : workers_) {
    if (w.idle && !w.done && now - w.idle_since >= config_.idle_timeout) ++expired;
  }
  const int surplus = threads_ - retire_ - config_.min_threads;
  const int retire = std::min(expired - retire_, surplus);
  if (retire > 0) {
    retire_ += retire;
    cv_.notify_all();
  }
  join_finished(lock);
}

void WorkerPool::stop() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  std::vector<std::thread> all;
  for (auto& w : workers_) all.push_back(std::move(w.thread));
  lock.unlock();
  for (auto& t : all) {
    if (t.joinable()) t.join();
  }
  lock.lock();
  workers_.clear();
}

void WorkerPool::set_limits(int min_threads, int max_threads) {
  std::lock_guard lock(mu_);
  WorkerPoolConfig next = config_;
  next.min_threads = min_threads;
  next.max_threads = max_threads;
  next.validate();
  config_ = next;
  while (threads_ < config_.min_threads && !stopping_) spawn_locked();
  // Above the new maximum: idle threads go at once, busy ones after their task.
  const int excess = threads_ - retire_ - config_.max_threads;
  if (excess > 0) {
    retire_ += excess;
    cv_.notify_all();
  }
}

void WorkerPool::set_scale_up_queue_depth(int depth) {
  std::lock_guard lock(mu_);
  WorkerPoolConfig next = config_;
  next.scale_up_queue_depth = depth;
  next.validate();
  config_ = next;
}

void WorkerPool::set_idle_timeout(Duration timeout) {
  std::lock_guard lock(mu_);
  WorkerPoolConfig next = config_;
  next.idle_timeout = timeout;
  next.validate();
  config_ = next;
}

WorkerPool::Stats WorkerPool::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.threads = threads_;
  s.idle = idle_;
  s.queued = queue_.size();
  return s;
}

}  // namespace agentline::resilience
