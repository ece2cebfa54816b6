// Hit rates of ResultCache (W-TinyLFU and LRU, one shard: one global policy) on a trace.
//   agentline_hitrate zipf NAME KEYS ACCESSES SKEW SEED OUT_TRACE SIZE...   writes the trace too
//   agentline_hitrate file NAME TRACE SIZE...                              one key per line (.gz ok)
// Prints one JSON line per policy and size.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "agentline/cache/result_cache.h"

namespace {

std::vector<std::string> read_trace(const std::string& path) {
  std::vector<std::string> keys;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path);
  char line[512];
  while (gzgets(f, line, sizeof line) != nullptr) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (!s.empty() && s[0] != '*') keys.push_back(s);
  }
  gzclose(f);
  return keys;
}

void run(const std::string& name, const std::vector<std::string>& keys, const std::vector<std::size_t>& sizes) {
  using Policy = agentline::cache::ResultCacheConfig::Policy;
  for (std::size_t size : sizes) {
    for (auto [policy, label] : {std::pair{Policy::kWTinyLfu, "w-tinylfu"}, std::pair{Policy::kLru, "lru"}}) {
      agentline::cache::ResultCacheConfig c;
      c.max_entries = size;
      c.policy = policy;
      c.shards = 1;
      agentline::cache::ResultCache cache(c);
      for (const auto& k : keys) {
        if (!cache.get(k)) cache.put(k, "", "");
      }
      std::printf("{\"trace\": \"%s\", \"policy\": \"%s\", \"size\": %zu, \"hit_rate\": %.6f}\n", name.c_str(), label,
                  size, cache.stats().hit_rate());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 8 && a[0] == "zipf") {
    const int n = std::stoi(a[2]);
    const int accesses = std::stoi(a[3]);
    const double skew = std::stod(a[4]);
    std::vector<double> cdf(static_cast<std::size_t>(n));
    double sum = 0;
    for (int i = 0; i < n; ++i) cdf[static_cast<std::size_t>(i)] = (sum += 1.0 / std::pow(i + 1, skew));
    std::mt19937_64 rng(std::stoull(a[5]));
    std::uniform_real_distribution<double> u(0, sum);
    // Scramble ranks so that popularity does not follow key order.
    std::vector<int> perm(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::string> keys;
    keys.reserve(static_cast<std::size_t>(accesses));
    std::ofstream out(a[6]);
    for (int i = 0; i < accesses; ++i) {
      const auto rank = static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
      keys.push_back(std::to_string(perm[rank]));
      out << keys.back() << '\n';
    }
    std::vector<std::size_t> sizes;
    for (std::size_t i = 7; i < a.size(); ++i) sizes.push_back(std::stoul(a[i]));
    run(a[1], keys, sizes);
    return 0;
  }
  if (a.size() >= 4 && a[0] == "file") {
    std::vector<std::size_t> sizes;
    for (std::size_t i = 3; i < a.size(); ++i) sizes.push_back(std::stoul(a[i]));
    run(a[1], read_trace(a[2]), sizes);
    return 0;
  }
  std::cerr
      << "usage: agentline_hitrate zipf NAME KEYS ACCESSES SKEW SEED OUT_TRACE SIZE... | file NAME TRACE SIZE...\n";
  return 2;
}
