#include "agentline/cache/result_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <future>
#include <list>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "agentline/observability/metric_families.h"

namespace agentline::cache {
namespace {

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::size_t next_pow2(std::size_t v) {
  std::size_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// A count-min sketch of 4-bit counters (saturating at 15), 4 rows. Every `sample_size`
// increments all counters are halved, so old popularity fades (TinyLFU's reset).
class FrequencySketch {
 public:
  explicit FrequencySketch(std::size_t capacity)
      : width_(next_pow2(std::max<std::size_t>(16, capacity * 2))),
        mask_(width_ - 1),
        sample_size_(std::max<std::size_t>(10 * capacity, 160)),
        table_(width_ * kRows, 0) {}

  void increment(std::uint64_t hash) {
    bool added = false;
    for (int row = 0; row < kRows; ++row) {
      std::uint8_t& c = table_[index(hash, row)];
      if (c < 15) {
        ++c;
        added = true;
      }
    }
    if (added && ++additions_ >= sample_size_) reset();
  }

  int frequency(std::uint64_t hash) const {
    int f = 15;
    for (int row = 0; row < kRows; ++row) f = std::min<int>(f, table_[index(hash, row)]);
    return f;
  }

 private:
  static constexpr int kRows = 4;
  std::size_t index(std::uint64_t hash, int row) const {
    return static_cast<std::size_t>(row) * width_ + (mix64(hash + 0x9e3779b97f4a7c15ULL * (row + 1)) & mask_);
  }
  void reset() {
    for (auto& c : table_) c >>= 1;
    additions_ /= 2;
  }

  std::size_t width_;
  std::size_t mask_;
  std::size_t sample_size_;
  std::size_t additions_ = 0;
  std::vector<std::uint8_t> table_;
};

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed (OpenSSL)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(length * 2, '0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

std::string content_key(std::string_view ns, const nlohmann::json& content) {
  // nlohmann::json keeps object keys sorted, so dump() is canonical.
  std::string canonical(ns);
  canonical.push_back('\n');
  canonical += content.dump();
  return sha256_hex(canonical);
}

void ResultCacheConfig::validate() const {
  if (max_entries < 1) throw std::invalid_argument("result cache: max_entries must be at least 1");
  if (ttl.count() <= 0) throw std::invalid_argument("result cache: ttl must be positive");
  if (shards < 0 || shards > 256) throw std::invalid_argument("result cache: shards must be in [0, 256]");
}

// One lock, one W-TinyLFU policy: window LRU (1%) -> probation (20% of main) -> protected (80%).
class ResultCache::Shard {
 public:
  Shard(std::size_t capacity, ResultCacheConfig::Policy policy)
      : window_cap_(policy == ResultCacheConfig::Policy::kLru ? capacity : std::max<std::size_t>(1, capacity / 100)),
        main_cap_(capacity - window_cap_),
        protected_cap_(main_cap_ * 8 / 10),
        sketch_(capacity) {
    map_.reserve(capacity + 1);
  }

  Value get(const std::string& key, std::uint64_t hash, TimePoint now, bool count) {
    std::lock_guard lock(mu_);
    if (count) sketch_.increment(hash);
    auto it = map_.find(key);
    if (it == map_.end()) {
      if (count) ++misses_;
      return nullptr;
    }
    Entry& e = it->second;
    if (e.expires <= now) {
      erase_locked(it);
      if (count) {
        ++expirations_;
        ++misses_;
      }
      return nullptr;
    }
    if (count) {
      ++hits_;
      touch_locked(e);
    }
    return e.value;
  }

  void put(const std::string& key, std::uint64_t hash, const std::string& ns, Value value, TimePoint expires) {
    std::lock_guard lock(mu_);
    ++puts_;
    sketch_.increment(hash);
    auto [it, inserted] = map_.try_emplace(key);
    Entry& e = it->second;
    e.ns = ns;
    e.value = std::move(value);
    e.expires = expires;
    if (!inserted) {
      touch_locked(e);
      return;
    }
    e.key = &it->first;
    e.hash = hash;
    e.segment = Segment::kWindow;
    window_.push_front(&e);
    e.pos = window_.begin();
    if (window_.size() <= window_cap_) return;

    Entry* candidate = window_.back();
    if (main_cap_ == 0) {
      evict_locked(candidate);
      return;
    }
    move_locked(candidate, Segment::kProbation);
    if (probation_.size() + protected_.size() <= main_cap_) return;
    Entry* victim = probation_.back();
    if (victim == candidate) victim = protected_.empty() ? candidate : protected_.back();
    // TinyLFU admission: the newcomer displaces the main segment's least recently used entry
    // only if it has been asked for more often.
    if (victim != candidate && sketch_.frequency(candidate->hash) > sketch_.frequency(victim->hash)) {
      evict_locked(victim);
    } else {
      evict_locked(candidate);
    }
  }

  bool erase(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    erase_locked(it);
    ++invalidations_;
    return true;
  }

  std::vector<std::string> erase_namespace(const std::string& ns) {
    std::lock_guard lock(mu_);
    std::vector<std::string> keys;
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.ns == ns) {
        keys.push_back(it->first);
        auto next = std::next(it);
        erase_locked(it);
        ++invalidations_;
        it = next;
      } else {
        ++it;
      }
    }
    return keys;
  }

  void add_to(Stats& s) const {
    std::lock_guard lock(mu_);
    s.hits += hits_;
    s.misses += misses_;
    s.puts += puts_;
    s.evictions += evictions_;
    s.expirations += expirations_;
    s.invalidations += invalidations_;
    s.entries += map_.size();
  }

 private:
  enum class Segment : std::uint8_t { kWindow, kProbation, kProtected };
  struct Entry {
    const std::string* key = nullptr;
    std::uint64_t hash = 0;
    std::string ns;
    Value value;
    TimePoint expires{};
    Segment segment = Segment::kWindow;
    std::list<Entry*>::iterator pos;
  };

  std::list<Entry*>& list_of(Segment s) {
    switch (s) {
      case Segment::kWindow:
        return window_;
      case Segment::kProbation:
        return probation_;
      case Segment::kProtected:
        return protected_;
    }
    return window_;
  }

  // Moves to the front of `to` (splice: no allocation).
  void move_locked(Entry* e, Segment to) {
    auto& from = list_of(e->segment);
    auto& dest = list_of(to);
    dest.splice(dest.begin(), from, e->pos);
    e->segment = to;
    e->pos = dest.begin();
  }

  void touch_locked(Entry& e) {
    switch (e.segment) {
      case Segment::kWindow:
      case Segment::kProtected:
        move_locked(&e, e.segment);
        return;
      case Segment::kProbation:
        move_locked(&e, Segment::kProtected);
        if (protected_.size() > protected_cap_) move_locked(protected_.back(), Segment::kProbation);
        return;
    }
  }

  void evict_locked(Entry* e) {
    ++evictions_;
    erase_locked(map_.find(*e->key));
  }

  void erase_locked(std::unordered_map<std::string, Entry>::iterator it) {
    Entry& e = it->second;
    list_of(e.segment).erase(e.pos);
    map_.erase(it);
  }

  const std::size_t window_cap_;
  const std::size_t main_cap_;
  const std::size_t protected_cap_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<Entry*> window_;
  std::list<Entry*> probation_;
  std::list<Entry*> protected_;
  FrequencySketch sketch_;
  std::int64_t hits_ = 0;
  std::int64_t misses_ = 0;
  std::int64_t puts_ = 0;
  std::int64_t evictions_ = 0;
  std::int64_t expirations_ = 0;
  std::int64_t invalidations_ = 0;
};

struct ResultCache::Flight {
  std::promise<Value> promise;
  std::shared_future<Value> future = promise.get_future().share();
};

ResultCache::ResultCache(ResultCacheConfig config, const Clock& clock)
    : config_((config.validate(), config)), clock_(clock) {
  int shards = config_.shards != 0 ? config_.shards : (config_.max_entries < 4096 ? 1 : 8);
  shards = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(shards), config_.max_entries));
  const std::size_t per_shard =
      (config_.max_entries + static_cast<std::size_t>(shards) - 1) / static_cast<std::size_t>(shards);
  for (int i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>(per_shard, config_.policy));
}

ResultCache::~ResultCache() = default;

ResultCache::Shard& ResultCache::shard_for(std::size_t hash) const { return *shards_[(hash >> 40) % shards_.size()]; }

Value ResultCache::get(const std::string& key) {
  const std::size_t hash = std::hash<std::string>{}(key);
  return shard_for(hash).get(key, hash, clock_.now(), true);
}

void ResultCache::store(const std::string& key, const std::string& ns, Value value, Duration ttl, bool notify) {
  const std::size_t hash = std::hash<std::string>{}(key);
  shard_for(hash).put(key, hash, ns, value, clock_.now() + ttl);
  if (notify) {
    if (Listener* l = listener_.load(std::memory_order_acquire)) l->on_put(key, ns, value, ttl);
  }
}

void ResultCache::put(const std::string& key, const std::string& ns, std::string value, std::optional<Duration> ttl) {
  store(key, ns, std::make_shared<const std::string>(std::move(value)), ttl.value_or(config_.ttl), true);
}

ResultCache::Result ResultCache::get_or_compute(const std::string& key, const std::string& ns,
                                                const std::function<std::string()>& compute) {
  if (Value v = get(key)) return {std::move(v), true};
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(flights_mu_);
    auto [it, inserted] = flights_.try_emplace(key);
    if (inserted) it->second = std::make_shared<Flight>();
    flight = it->second;
    leader = inserted;
  }
  if (!leader) {
    single_flight_shared_.fetch_add(1, std::memory_order_relaxed);
    return {flight->future.get(), true};  // rethrows the leader's exception
  }
  auto finish = [&] {
    std::lock_guard lock(flights_mu_);
    flights_.erase(key);
  };
  try {
    // Another leader may have stored it between our miss and our flight.
    const std::size_t hash = std::hash<std::string>{}(key);
    Value v = shard_for(hash).get(key, hash, clock_.now(), false);
    const bool cached = v != nullptr;
    if (!v) {
      v = std::make_shared<const std::string>(compute());
      store(key, ns, v, config_.ttl, true);
    }
    flight->promise.set_value(v);
    finish();
    return {std::move(v), cached};
  } catch (...) {
    flight->promise.set_exception(std::current_exception());
    finish();
    throw;
  }
}

bool ResultCache::invalidate(const std::string& key) {
  const bool erased = shard_for(std::hash<std::string>{}(key)).erase(key);
  if (Listener* l = listener_.load(std::memory_order_acquire)) l->on_invalidate(key);
  return erased;
}

std::size_t ResultCache::drop_namespace(const std::string& ns, bool notify) {
  std::vector<std::string> keys;
  for (auto& shard : shards_) {
    auto k = shard->erase_namespace(ns);
    keys.insert(keys.end(), std::make_move_iterator(k.begin()), std::make_move_iterator(k.end()));
  }
  if (notify) {
    if (Listener* l = listener_.load(std::memory_order_acquire)) l->on_invalidate_namespace(ns, keys);
  }
  return keys.size();
}

std::size_t ResultCache::invalidate_namespace(const std::string& ns) { return drop_namespace(ns, true); }

void ResultCache::apply_remote_put(const std::string& key, const std::string& ns, std::string value, Duration ttl) {
  if (ttl.count() <= 0) return;
  remote_applied_.fetch_add(1, std::memory_order_relaxed);
  store(key, ns, std::make_shared<const std::string>(std::move(value)), ttl, false);
}

void ResultCache::apply_remote_invalidate(const std::string& key) {
  shard_for(std::hash<std::string>{}(key)).erase(key);
}

std::size_t ResultCache::apply_remote_invalidate_namespace(const std::string& ns) { return drop_namespace(ns, false); }

void ResultCache::set_listener(Listener* listener) { listener_.store(listener, std::memory_order_release); }

ResultCache::Stats ResultCache::stats() const {
  Stats s;
  for (const auto& shard : shards_) shard->add_to(s);
  s.single_flight_shared = single_flight_shared_.load(std::memory_order_relaxed);
  s.remote_applied = remote_applied_.load(std::memory_order_relaxed);
  return s;
}

void ResultCache::append_metrics(std::vector<prometheus::MetricFamily>& families) const {
  using observability::add_sample;
  using observability::family;
  using prometheus::MetricType;
  const Stats s = stats();
  auto& requests = family(families, "agentline_cache_requests_total", "Cache lookups by result", MetricType::Counter);
  add_sample(requests, {{"cache", config_.name}, {"result", "hit"}}, static_cast<double>(s.hits));
  add_sample(requests, {{"cache", config_.name}, {"result", "miss"}}, static_cast<double>(s.misses));
  auto& removed = family(families, "agentline_cache_removals_total", "Entries removed, by cause", MetricType::Counter);
  add_sample(removed, {{"cache", config_.name}, {"cause", "size"}}, static_cast<double>(s.evictions));
  add_sample(removed, {{"cache", config_.name}, {"cause", "expired"}}, static_cast<double>(s.expirations));
  add_sample(removed, {{"cache", config_.name}, {"cause", "invalidated"}}, static_cast<double>(s.invalidations));
  add_sample(family(families, "agentline_cache_entries", "Entries in the cache", MetricType::Gauge),
             {{"cache", config_.name}}, static_cast<double>(s.entries));
  add_sample(family(families, "agentline_cache_hit_ratio", "Hits over lookups since start", MetricType::Gauge),
             {{"cache", config_.name}}, s.hit_rate());
  add_sample(family(families, "agentline_cache_single_flight_shared_total",
                    "Misses answered by another caller's computation of the same key", MetricType::Counter),
             {{"cache", config_.name}}, static_cast<double>(s.single_flight_shared));
  add_sample(family(families, "agentline_cache_remote_applied_total", "Entries received from other replicas",
                    MetricType::Counter),
             {{"cache", config_.name}}, static_cast<double>(s.remote_applied));
}

}  // namespace agentline::cache
