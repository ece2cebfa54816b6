#pragma once
// Plain value types for records flowing in and out of Kafka. No librdkafka types here.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentline::kafka {

struct Header {
  std::string key;
  std::string value;
};
using Headers = std::vector<Header>;

// The last header named `key`, if any.
std::optional<std::string_view> find_header(const Headers& headers, std::string_view key);
// Replaces every header named `key` with one carrying `value`.
void set_header(Headers& headers, std::string_view key, std::string_view value);

struct OutgoingRecord {
  std::string topic;
  std::string key;
  std::string value;
  Headers headers;
  std::optional<std::int32_t> partition;  // empty: partitioned by key
  bool tombstone = false;                 // a null value (deletes the key from a compacted topic); value ignored
};

struct InboundRecord {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;  // empty for a null key
  std::string value;
  Headers headers;
  bool tombstone = false;  // the value was null

  std::optional<std::string_view> header(std::string_view name) const { return find_header(headers, name); }
};

}  // namespace agentline::kafka
