// libFuzzer target: a topic catalog file (topics/catalog.json or an operator's own). A bad
// catalog is rejected with std::invalid_argument naming the problem; nothing else may escape.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "agentline/kafka/topic_catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto catalog = agentline::kafka::TopicCatalog::parse(text);
    for (const auto& topic : catalog.all_topics()) {
      if (topic.name.empty() || topic.partitions < 1) __builtin_trap();  // accepted means usable
    }
    catalog.set_prefix("fuzz.");
    (void)catalog.all_topics();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
