#include "batch_coalescer.h"

#include <future>

namespace agentline::devfix {

struct BatchCoalescer::Batch {
  std::vector<GenerationRequest> requests;
  std::vector<std::promise<Generation>> results;
  std::int64_t tokens = 0;
  bool closed = false;
  std::condition_variable changed;
};

BatchCoalescer::BatchCoalescer(int max_files, std::int64_t max_tokens, std::chrono::milliseconds linger, Call call)
    : max_files_(std::max(1, max_files)), max_tokens_(max_tokens), linger_(linger), call_(std::move(call)) {}

Generation BatchCoalescer::submit(const std::string& job, const GenerationRequest& request) {
  std::unique_lock lock(mu_);
  auto& slot = open_[job];
  const bool fits = slot && !slot->closed && static_cast<int>(slot->requests.size()) < max_files_ &&
                    slot->tokens + request.max_tokens <= max_tokens_;
  const bool leader = !fits;
  if (leader) slot = std::make_shared<Batch>();
  std::shared_ptr<Batch> batch = slot;
  batch->requests.push_back(request);
  batch->results.emplace_back();
  batch->tokens += request.max_tokens;
  std::future<Generation> mine = batch->results.back().get_future();
  if (!leader) {
    batch->changed.notify_all();  // the leader may be waiting for a full batch
    lock.unlock();
    return mine.get();
  }
  batch->changed.wait_for(lock, linger_, [&] {
    return static_cast<int>(batch->requests.size()) >= max_files_ || batch->tokens >= max_tokens_;
  });
  batch->closed = true;
  if (open_[job] == batch) open_.erase(job);
  ++batches_;
  batched_files_ += static_cast<std::int64_t>(batch->requests.size());
  lock.unlock();
  // The batch is closed: nobody else touches its requests and results now.
  try {
    std::vector<Generation> generated = call_(batch->requests);
    for (std::size_t i = 0; i < batch->results.size(); ++i) {
      if (i < generated.size()) {
        batch->results[i].set_value(std::move(generated[i]));
      } else {
        batch->results[i].set_exception(std::make_exception_ptr(GenerationError(
            GenerationError::Kind::kUnavailable, "the batched reply has no file " + batch->requests[i].path)));
      }
    }
  } catch (...) {
    for (auto& r : batch->results) r.set_exception(std::current_exception());
  }
  return mine.get();
}

std::int64_t BatchCoalescer::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

std::int64_t BatchCoalescer::batched_files() const {
  std::lock_guard lock(mu_);
  return batched_files_;
}

}  // namespace agentline::devfix
