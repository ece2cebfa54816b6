#include "agentline/kafka/topic_catalog.h"

#include <nlohmann/json.hpp>

#include <set>
#include <stdexcept>

#include "agentline/config/resources.h"

namespace agentline::kafka {

namespace {

std::map<std::string, std::string> read_configs(const nlohmann::json& node, const std::string& where) {
  std::map<std::string, std::string> configs;
  if (node.is_null()) return configs;
  if (!node.is_object()) throw std::invalid_argument(where + ": configs must be an object");
  for (const auto& [key, value] : node.items()) {
    if (!value.is_string()) throw std::invalid_argument(where + ": config " + key + " must be a string");
    configs[key] = value.get<std::string>();
  }
  return configs;
}

void check_known_keys(const nlohmann::json& node, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : node.items()) {
    if (!known.count(key)) throw std::invalid_argument(where + ": unknown key '" + key + "'");
  }
}

bool valid_topic_name(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

namespace {

// A count field: an integer in [1, 1000000], or `fallback` when absent. A float (1e300 made
// value<int>() undefined behaviour, found by fuzz_topic_catalog) or an out-of-range number is
// an error naming the field.
int count_field(const nlohmann::json& obj, const char* key, int fallback, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key)) return fallback;
  const auto& v = obj[key];
  if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > 1000000) {
    throw std::invalid_argument("catalog: " + what + key + " must be an integer from 1 to 1000000");
  }
  return static_cast<int>(v.get<long long>());
}

}  // namespace

TopicCatalog TopicCatalog::parse(const std::string& json_text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("catalog is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw std::invalid_argument("catalog must be a JSON object");
  check_known_keys(doc, {"prefix", "replication_factor", "topics", "dlq", "retry", "description"}, "catalog");

  TopicCatalog c;
  try {
    c.prefix_ = doc.value("prefix", "agentline.");
    c.replication_factor_ = count_field(doc, "replication_factor", 1, "");
    if (c.replication_factor_ < 1) throw std::invalid_argument("catalog: replication_factor must be >= 1");
    if (!doc.contains("topics") || !doc["topics"].is_array() || doc["topics"].empty()) {
      throw std::invalid_argument("catalog: 'topics' must be a non-empty array");
    }
    std::set<std::string> names;
    for (const auto& t : doc["topics"]) {
      check_known_keys(t, {"name", "partitions", "configs", "key", "description"}, "catalog topic");
      Logical topic{t.at("name").get<std::string>(), count_field(t, "partitions", 1, "a topic's "),
                    read_configs(t.value("configs", nlohmann::json()), "topic " + t.at("name").get<std::string>())};
      if (!valid_topic_name(topic.name))
        throw std::invalid_argument("catalog: invalid topic name '" + topic.name + "'");
      if (topic.partitions < 1) throw std::invalid_argument("catalog: topic " + topic.name + " needs partitions >= 1");
      if (!names.insert(topic.name).second) throw std::invalid_argument("catalog: duplicate topic " + topic.name);
      c.topics_.push_back(std::move(topic));
    }
    c.dlq_ = doc.value("dlq", "dlq");
    if (!names.count(c.dlq_)) throw std::invalid_argument("catalog: dlq topic '" + c.dlq_ + "' is not in 'topics'");
    if (doc.contains("retry")) {
      const auto& r = doc["retry"];
      check_known_keys(r, {"delays_ms", "partitions", "groups", "configs"}, "catalog retry");
      for (const auto& d : r.at("delays_ms")) {
        if (!d.is_number_integer() || d.get<long long>() < 0) {
          throw std::invalid_argument("catalog: retry.delays_ms must be non-negative integers");
        }
        c.retry_delays_.emplace_back(d.get<long long>());
      }
      c.retry_partitions_ = count_field(r, "partitions", 1, "retry.");
      c.retry_groups_ = r.value("groups", std::vector<std::string>{});
      c.retry_configs_ = read_configs(r.value("configs", nlohmann::json()), "retry");
      for (const auto& g : c.retry_groups_) {
        if (!valid_topic_name(g)) throw std::invalid_argument("catalog: invalid retry group '" + g + "'");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("catalog: ") + e.what());
  }
  return c;
}

TopicCatalog TopicCatalog::load(const std::string& path) {
  if (path.empty()) return parse(std::string(*config::embedded_resource("topics/catalog.json")));
  return parse(config::read_file(path));
}

void TopicCatalog::set_prefix(const std::string& prefix) { prefix_ = prefix; }

std::string TopicCatalog::topic(const std::string& logical_name) const {
  for (const auto& t : topics_) {
    if (t.name == logical_name) return prefix_ + t.name;
  }
  throw std::out_of_range("topic '" + logical_name + "' is not in the catalog");
}

std::vector<RetryTier> TopicCatalog::retry_tiers(const std::string& group) const {
  std::vector<RetryTier> tiers;
  bool known = false;
  for (const auto& g : retry_groups_) known |= (g == group);
  if (!known) return tiers;
  for (std::size_t i = 0; i < retry_delays_.size(); ++i) {
    int attempt = static_cast<int>(i) + 1;
    tiers.push_back({prefix_ + "retry." + group + "." + std::to_string(attempt), attempt, retry_delays_[i]});
  }
  return tiers;
}

std::vector<TopicSpec> TopicCatalog::all_topics() const {
  std::vector<TopicSpec> out;
  for (const auto& t : topics_) out.push_back({prefix_ + t.name, t.partitions, replication_factor_, t.configs});
  for (const auto& g : retry_groups_) {
    for (const auto& tier : retry_tiers(g)) {
      out.push_back({tier.topic, retry_partitions_, replication_factor_, retry_configs_});
    }
  }
  return out;
}

}  // namespace agentline::kafka
