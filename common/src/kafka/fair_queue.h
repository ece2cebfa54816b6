#pragma once
// The records of one priority rank waiting locally for a worker, dispatched by weighted fair
// queuing between keys (dev-fix-worker's keys are tenants): start-time fair queuing with one unit
// per record. Each key's records keep their arrival order. A key's head record gets a virtual
// start tag when it becomes the head: max(V, the key's last finish) when the key had nothing
// waiting, else the finish of the record before it; it finishes at start + 1 / weight. The head
// with the smallest start goes next, and V, the virtual time, is the start of the record last
// dispatched. While two keys have records waiting, one of weight 3 gets three dispatched for each
// one of a key of weight 1; a key that was idle (or held) earns no credit, so it never bursts past
// the others when it returns; a key's first record waits behind at most one record of each other
// key. A key may be held until a time (its admission check refused it): its records wait and the
// other keys go on. With one key ("") it is first come, first served. It counts what its records
// weigh as `Bytes` says, each record as it was when it came in. Not thread-safe: the poll thread
// owns it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <utility>

namespace agentline::kafka::detail {

struct NoBytes {
  template <typename T>
  std::size_t operator()(const T&) const {
    return 0;
  }
};

template <typename T, typename Bytes = NoBytes>
class FairQueue {
 public:
  void push(const std::string& key, double weight, T item) {
    const std::size_t b = Bytes{}(item);
    enter(key, weight).items.push_back({next_seq_++, b, std::move(item)});
    ++size_;
    bytes_ += b;
  }
  // Back at the head of its key's queue (dispatched, then told to wait): it keeps its place
  // ahead of the key's later records.
  void push_front(const std::string& key, double weight, T item) {
    const std::size_t b = Bytes{}(item);
    enter(key, weight).items.push_front({--front_seq_, b, std::move(item)});
    ++size_;
    bytes_ += b;
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return bytes_; }

  // The key whose head record goes next at `now_ms`, among the keys not held; nullptr when every
  // key with records is held (or none has any). Valid until the queue changes.
  const std::string* next(std::int64_t now_ms) const {
    const std::string* best = nullptr;
    double best_tag = std::numeric_limits<double>::infinity();
    std::int64_t best_seq = 0;
    for (const auto& [key, k] : keys_) {
      if (k.items.empty() || k.held_until_ms > now_ms) continue;
      const double tag = start_tag(k);
      const std::int64_t seq = k.items.front().seq;
      if (tag < best_tag || (tag == best_tag && seq < best_seq)) {
        best = &key;
        best_tag = tag;
        best_seq = seq;
      }
    }
    return best;
  }
  T& front(const std::string& key) { return keys_.at(key).items.front().item; }

  // Removes `key`'s head record: dispatched (it takes its share) or dropped (it does not).
  void pop(const std::string& key, bool dispatched = true) {
    auto it = keys_.find(key);
    auto& k = it->second;
    if (dispatched) {
      const double start = start_tag(k);
      k.finish = start + 1 / k.weight;
      k.head_start = k.finish;
      k.returning = false;
      virtual_time_ = std::max(virtual_time_, start);
    }
    bytes_ -= k.items.front().bytes;
    k.items.pop_front();
    --size_;
    forget_if_idle(it);
  }

  // `key`'s records wait until `until_ms`; the other keys go on.
  void hold(const std::string& key, std::int64_t until_ms) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return;
    it->second.held_until_ms = until_ms;
    it->second.returning = true;
  }
  // The earliest time a held key may go again; the maximum int64 when none is held.
  std::int64_t next_release_ms(std::int64_t now_ms) const {
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (const auto& [key, k] : keys_) {
      if (!k.items.empty() && k.held_until_ms > now_ms) next = std::min(next, k.held_until_ms);
    }
    return next;
  }
  // Records of keys held at `now_ms`.
  std::size_t held(std::int64_t now_ms) const {
    std::size_t n = 0;
    for (const auto& [key, k] : keys_) {
      if (k.held_until_ms > now_ms) n += k.items.size();
    }
    return n;
  }

  template <typename Pred>
  void erase_if(Pred pred) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      size_ -= std::erase_if(it->second.items, [&](const Entry& entry) {
        if (!pred(entry.item)) return false;
        bytes_ -= entry.bytes;
        return true;
      });
      auto next = std::next(it);
      forget_if_idle(it);
      it = next;
    }
  }

 private:
  struct Entry {
    std::int64_t seq;   // arrival sequence (negative: put back)
    std::size_t bytes;  // what it weighed when it came in
    T item;
  };
  struct Key {
    std::deque<Entry> items;
    double weight = 1;
    double head_start = 0;  // virtual start tag of the head record
    double finish = 0;      // virtual finish tag of the key's last dispatched record
    std::int64_t held_until_ms = 0;
    bool returning = false;  // held since its last dispatch: starts again at V at the earliest
  };
  // `key`'s queue, about to take a record: a key that had none starts at V at the earliest.
  Key& enter(const std::string& key, double weight) {
    auto& k = keys_[key];
    k.weight = weight > 0 ? weight : 1;
    if (k.items.empty()) k.head_start = std::max(virtual_time_, k.finish);
    return k;
  }
  double start_tag(const Key& k) const { return k.returning ? std::max(virtual_time_, k.head_start) : k.head_start; }
  // A key without records is forgotten, hold and all: its finish is at most one record ahead of
  // V, and its next record is checked for admission again. The map stays as small as the keys
  // with work.
  void forget_if_idle(typename std::map<std::string, Key>::iterator it) {
    if (it->second.items.empty()) keys_.erase(it);
  }

  std::map<std::string, Key> keys_;
  double virtual_time_ = 0;
  std::int64_t next_seq_ = 0;
  std::int64_t front_seq_ = 0;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace agentline::kafka::detail
