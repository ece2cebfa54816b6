#include "routing_table.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace agentline::router {

const char* RoutingTable::default_json() {
  return R"({
  "routes": {
    "FILE_COMPLETED": "qa.requests",
    "QA_PASSED": "deploy.requests",
    "QA_FAILED": "tasks.fix",
    "FILE_FAILED": "dlq",
    "UPLOADED": "",
    "UPLOAD_FAILED": "",
    "ESCALATED": ""
  },
  "fix_limit": 3,
  "plan_fix_limit": 2,
  "replan_limit": 1,
  "job_fix_limit": 2
})";
}

RoutingTable RoutingTable::parse(const std::string& json_text, const kafka::TopicCatalog& catalog) {
  auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw std::invalid_argument("routing table: not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (key != "routes" && key != "fix_limit" && key != "plan_fix_limit" && key != "replan_limit" &&
        key != "job_fix_limit")
      throw std::invalid_argument("routing table: unknown key '" + key + "'");
  }
  static const std::set<std::string> kTypes{"FILE_COMPLETED", "FILE_FAILED",   "QA_PASSED", "QA_FAILED",
                                            "UPLOADED",       "UPLOAD_FAILED", "ESCALATED"};
  RoutingTable table;
  for (auto [key, field] :
       {std::pair{"fix_limit", &table.fix_limit_}, std::pair{"plan_fix_limit", &table.plan_fix_limit_},
        std::pair{"replan_limit", &table.replan_limit_}, std::pair{"job_fix_limit", &table.job_fix_limit_}}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_number_integer() || doc[key].get<int>() < 0) {
      throw std::invalid_argument(std::string("routing table: ") + key + " must be a non-negative integer");
    }
    *field = doc[key].get<int>();
  }
  if (!doc.contains("routes") || !doc["routes"].is_object())
    throw std::invalid_argument("routing table: 'routes' is missing");
  const std::string fix_topic = catalog.topic("tasks.fix");
  for (const auto& [type, dest] : doc["routes"].items()) {
    if (kTypes.count(type) == 0) throw std::invalid_argument("routing table: unknown event type '" + type + "'");
    if (!dest.is_string()) throw std::invalid_argument("routing table: the route of " + type + " must be a string");
    const std::string d = dest.get<std::string>();
    Route r;
    if (d.empty()) {
      r.kind = Route::Kind::kProgressOnly;
    } else if (d == "dlq") {
      r.kind = Route::Kind::kDeadLetter;
    } else {
      std::string topic;
      try {
        topic = catalog.topic(d);
      } catch (const std::exception&) {
        throw std::invalid_argument("routing table: " + type + " routes to '" + d +
                                    "', which is not in the topic catalog");
      }
      r.kind = topic == fix_topic ? Route::Kind::kFix : Route::Kind::kForward;
      r.topic = topic;
      if (r.kind == Route::Kind::kFix && type != "QA_FAILED") {
        throw std::invalid_argument("routing table: only QA_FAILED can route to tasks.fix");
      }
    }
    table.routes_[type] = r;
  }
  return table;
}

RoutingTable RoutingTable::load(const std::string& path, const kafka::TopicCatalog& catalog) {
  if (path.empty()) return parse(default_json(), catalog);
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("routing table: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), catalog);
}

std::optional<Route> RoutingTable::route(const std::string& type) const {
  auto it = routes_.find(type);
  if (it == routes_.end()) return std::nullopt;
  return it->second;
}

}  // namespace agentline::router
