#pragma once
// Lets small files of one job share a single LLM call (the seed's batch processing). Handlers
// run on many threads at once; the first small file of a job opens a batch and waits up to
// `linger` for others of the same job to join, within `max_files` and `max_tokens` (the sum of
// the files' max_tokens). Then one call generates them all and each waiting handler gets its
// own file back, or the call's exception. Thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "generator.h"

namespace agentline::devfix {

class BatchCoalescer {
 public:
  using Call = std::function<std::vector<Generation>(const std::vector<GenerationRequest>&)>;
  BatchCoalescer(int max_files, std::int64_t max_tokens, std::chrono::milliseconds linger, Call call);
  // Blocks until the batch holding `request` has been generated; rethrows the call's exception.
  Generation submit(const std::string& job, const GenerationRequest& request);
  std::int64_t batches() const;
  std::int64_t batched_files() const;

 private:
  struct Batch;
  const int max_files_;
  const std::int64_t max_tokens_;
  const std::chrono::milliseconds linger_;
  Call call_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Batch>> open_;  // by job
  std::int64_t batches_ = 0;
  std::int64_t batched_files_ = 0;
};

}  // namespace agentline::devfix
