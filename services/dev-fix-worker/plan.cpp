#include "plan.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "agentline/events/path_policy.h"

namespace agentline::devfix {
namespace {

using nlohmann::json;

// The end of the balanced {...} or [...] that starts at `open`, npos if it never closes.
std::size_t balanced_end(const std::string& text, std::size_t open) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if ((c == '}' || c == ']') && --depth == 0)
      return i;
  }
  return std::string::npos;
}

json first_json_in(const std::string& text) {
  auto whole = json::parse(text, nullptr, false);
  if (!whole.is_discarded() && (whole.is_object() || whole.is_array())) return whole;
  for (std::size_t at = text.find_first_of("{["); at != std::string::npos; at = text.find_first_of("{[", at + 1)) {
    const std::size_t end = balanced_end(text, at);
    if (end == std::string::npos) continue;
    auto doc = json::parse(text.substr(at, end - at + 1), nullptr, false);
    if (!doc.is_discarded()) return doc;
  }
  return nullptr;
}

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

// "a.py -> b.py -> a.py" for the first cycle found, "" if none.
std::string find_cycle(const std::map<std::string, std::vector<std::string>>& deps) {
  std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& node) {
    state[node] = 1;
    stack.push_back(node);
    for (const auto& next : deps.at(node)) {
      if (!deps.count(next)) continue;
      if (state[next] == 1) {
        auto from = std::find(stack.begin(), stack.end(), next);
        for (auto it = from; it != stack.end(); ++it) cycle += *it + " -> ";
        cycle += next;
        return true;
      }
      if (state[next] == 0 && visit(next)) return true;
    }
    stack.pop_back();
    state[node] = 2;
    return false;
  };
  for (const auto& [node, unused] : deps) {
    if (state[node] == 0 && visit(node)) return cycle;
  }
  return "";
}

// The file entries of a reply: {"files": [...]}, a bare array, or {"plan": {"files": ...}}.
json files_of(const json& doc) {
  if (doc.is_array()) return doc;
  if (!doc.is_object()) return nullptr;
  if (doc.contains("files")) return doc["files"];
  // A single file where a list was asked for (small models do that).
  if (doc.contains("path") && doc.contains("description")) return json::array({doc});
  if (doc.contains("plan") && doc["plan"].is_object()) return files_of(doc["plan"]);
  return nullptr;
}

json normalize_file(const json& f, std::vector<std::string>& errors, const PlanLimits& limits, std::size_t index) {
  const std::string where = "files[" + std::to_string(index) + "]";
  if (!f.is_object()) {
    errors.push_back(where + " is not an object");
    return nullptr;
  }
  const std::string path = str(f.value("path", json()));
  if (path.empty()) {
    errors.push_back(where + " has no \"path\"");
    return nullptr;
  }
  if (auto reason = events::unsafe_path_reason(path)) {
    errors.push_back(where + " path \"" + path.substr(0, 200) + "\" is not allowed: " + *reason);
    return nullptr;
  }
  const std::string description = str(f.value("description", json()));
  if (description.empty()) errors.push_back(path + " has no \"description\"");
  if (description.size() > limits.max_description) {
    errors.push_back(path + "'s description is longer than " + std::to_string(limits.max_description) + " characters");
  }
  json deps = f.value("depends_on", json::array());
  if (deps.is_string()) deps = json::array({deps});
  if (deps.is_null()) deps = json::array();
  json clean = json::array();
  if (!deps.is_array()) {
    errors.push_back(path + "'s \"depends_on\" is not a list of paths");
  } else {
    for (const auto& d : deps) {
      if (!d.is_string() || d.get<std::string>().empty()) {
        errors.push_back(path + "'s \"depends_on\" holds something that is not a path");
        continue;
      }
      if (d == path) {
        errors.push_back(path + " depends on itself");
        continue;
      }
      clean.push_back(d);
    }
    if (static_cast<int>(clean.size()) > limits.max_depends)
      errors.push_back(path + " has more than " + std::to_string(limits.max_depends) + " dependencies");
  }
  std::string language = str(f.value("language", json()));
  if (language.empty() || language.size() > 64) language = language_of(path);
  json out = {{"path", path}, {"description", description}, {"language", language}, {"depends_on", clean}};
  if (f.contains("parent") && f["parent"].is_string()) out["parent"] = f["parent"];
  if (f.contains("replanned") && f["replanned"].is_boolean()) out["replanned"] = f["replanned"];
  if (f.contains("task_id") && f["task_id"].is_string()) out["task_id"] = f["task_id"];
  return out;
}

// Checks `files` (normalized) and `items` together: unique paths, known dependencies, no
// cycles, parents that exist.
void check_graph(const json& files, const json& items, std::vector<std::string>& errors) {
  std::map<std::string, std::vector<std::string>> deps;
  for (const auto& f : files) {
    const std::string path = f["path"];
    if (deps.count(path)) {
      errors.push_back("\"" + path + "\" is planned twice");
      continue;
    }
    deps[path] = f["depends_on"].get<std::vector<std::string>>();
  }
  std::set<std::string> item_ids;
  for (const auto& i : items) item_ids.insert(i["id"].get<std::string>());
  for (const auto& f : files) {
    for (const auto& d : f["depends_on"]) {
      if (!deps.count(d.get<std::string>())) {
        errors.push_back(f["path"].get<std::string>() + " depends on " + d.get<std::string>() +
                         ", which is not a file of the plan");
      }
    }
    if (f.contains("parent") && !item_ids.count(f["parent"].get<std::string>())) {
      errors.push_back(f["path"].get<std::string>() + "'s parent \"" + f["parent"].get<std::string>() +
                       "\" is not an item of the plan");
    }
  }
  if (auto cycle = find_cycle(deps); !cycle.empty()) errors.push_back("dependency cycle: " + cycle);
}

// A dependency written as a module ("app.util", "app.util.py") where the plan has the path
// ("app/util.py"): the path. Anything else stays as written (and is an error if unknown).
void resolve_module_names(json& files) {
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f["path"].get<std::string>());
  for (auto& f : files) {
    for (auto& d : f["depends_on"]) {
      std::string name = d.get<std::string>();
      if (paths.count(name)) continue;
      if (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0) name.resize(name.size() - 3);
      std::replace(name.begin(), name.end(), '.', '/');
      if (paths.count(name + ".py")) d = name + ".py";
    }
  }
}

json normalize_items(const json& doc, std::vector<std::string>& errors) {
  json items = json::array();
  if (!doc.is_object() || !doc.contains("items")) return items;
  if (!doc["items"].is_array()) {
    errors.push_back("\"items\" is not a list");
    return items;
  }
  static const std::set<std::string> kKinds{"epic", "feature", "story", "task", "group"};
  std::set<std::string> ids;
  for (const auto& i : doc["items"]) {
    const std::string id = i.is_object() ? str(i.value("id", json())) : "";
    const bool id_ok =
        !id.empty() && id.size() <= 128 &&
        id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == std::string::npos;
    if (!id_ok || !kKinds.count(str(i.value("kind", json()))) || str(i.value("title", json())).empty()) {
      errors.push_back(
          "an item needs an id (A-Z a-z 0-9 . _ : -), a kind (epic, feature, story, task, group) "
          "and a title");
      continue;
    }
    if (!ids.insert(id).second) errors.push_back("item \"" + id + "\" is planned twice");
    json item = {{"id", id}, {"kind", i["kind"]}, {"title", str(i["title"]).substr(0, 512)}};
    if (i.contains("parent") && i["parent"].is_string()) item["parent"] = i["parent"];
    if (i.contains("description") && i["description"].is_string()) item["description"] = i["description"];
    items.push_back(std::move(item));
  }
  for (const auto& i : items) {
    if (i.contains("parent") && !ids.count(i["parent"].get<std::string>()))
      errors.push_back("item \"" + i["id"].get<std::string>() + "\"'s parent is not an item of the plan");
  }
  return items;
}

std::string interface_of(const json& doc) {
  if (!doc.is_object() || !doc.contains("interface")) return "";
  const auto& v = doc["interface"];
  return v.is_string() ? v.get<std::string>() : v.dump(1);
}

int file_limit(const json& task, const PlanLimits& limits) {
  const auto& c = task["payload"].value("constraints", json::object());
  if (c.is_object() && c.contains("max_files") && c["max_files"].is_number_integer())
    return std::min(limits.max_files, std::max(1, c["max_files"].get<int>()));
  return limits.max_files;
}

}  // namespace

std::string language_of(const std::string& path) {
  static const std::map<std::string, std::string> kByExtension{
      {".py", "python"}, {".js", "javascript"}, {".mjs", "javascript"}, {".ts", "typescript"}, {".c", "c"},
      {".h", "c"},       {".cpp", "cpp"},       {".cc", "cpp"},         {".hpp", "cpp"},       {".sh", "shell"},
      {".json", "json"}, {".yaml", "yaml"},     {".yml", "yaml"},       {".md", "markdown"},   {".toml", "toml"}};
  auto it = kByExtension.find(std::filesystem::path(path).extension().string());
  return it == kByExtension.end() ? "text" : it->second;
}

std::string plan_reply_schema(int max_files) {
  using ordered = nlohmann::ordered_json;
  const ordered path = {{"type", "string"}, {"minLength", 1}};
  const ordered file = {{"type", "object"},
                        {"properties",
                         {{"path", path},
                          {"description", {{"type", "string"}, {"minLength", 1}}},
                          {"language", {{"type", "string"}}},
                          {"depends_on", {{"type", "array"}, {"items", path}}}}},
                        {"required", {"path", "description", "depends_on"}}};
  const ordered schema = {{"type", "object"},
                          {"properties",
                           {{"files", {{"type", "array"}, {"minItems", 1}, {"maxItems", max_files}, {"items", file}}},
                            {"interface", {{"type", "string"}}}}},
                          {"required", {"files", "interface"}}};
  return schema.dump();
}

json extract_json(const std::string& reply) {
  // Fenced blocks first (```json ... ```), in order; then the reply itself.
  for (std::size_t open = reply.find("```"); open != std::string::npos;) {
    const std::size_t body = reply.find('\n', open);
    if (body == std::string::npos) break;
    const std::size_t close = reply.find("```", body + 1);
    const std::string block = reply.substr(body + 1, close == std::string::npos ? std::string::npos : close - body - 1);
    if (auto doc = first_json_in(block); !doc.is_null()) return doc;
    if (close == std::string::npos) break;
    open = reply.find("```", close + 3);
  }
  return first_json_in(reply);
}

PlanCheck check_plan(const std::string& reply, const json& task, const PlanLimits& limits) {
  PlanCheck out;
  auto& errors = out.errors;
  const json doc = extract_json(reply);
  const json files = files_of(doc);
  if (!files.is_array()) {
    errors.push_back(doc.is_null() ? "the reply holds no JSON plan" : "the JSON has no \"files\" list");
    return out;
  }
  if (files.empty()) errors.push_back("the plan has no files");
  const bool replan = task.value("type", "") == "REPLAN_TASK";
  const int max_files = file_limit(task, limits);
  json normalized = json::array();
  for (std::size_t i = 0; i < files.size(); ++i) {
    json f = normalize_file(files[i], errors, limits, i);
    if (!f.is_null()) normalized.push_back(std::move(f));
  }
  json items = normalize_items(doc, errors);
  std::string interface = interface_of(doc);
  if (replan) {
    // Merge into the job's plan: the file is revised in place, new files are added.
    const auto& payload = task["payload"];
    const std::string path = payload["path"];
    const json& base = payload.value("plan", json::object());
    json merged = json::array();
    std::map<std::string, json> revised;
    for (const auto& f : normalized) revised[f["path"].get<std::string>()] = f;
    if (!revised.count(path)) errors.push_back("the reply does not plan " + path + " again");
    std::set<std::string> existing;
    for (const auto& f : base.value("files", json::array())) {
      const std::string p = f.value("path", "");
      existing.insert(p);
      if (p == path && revised.count(p)) {
        json r = revised[p];
        r["replanned"] = true;
        if (f.contains("parent")) r["parent"] = f["parent"];
        merged.push_back(std::move(r));
      } else {
        merged.push_back(f);
      }
    }
    for (const auto& f : normalized) {
      const std::string p = f["path"];
      if (p == path) continue;
      if (existing.count(p)) {
        errors.push_back(p + " is already a file of the plan; a replan may only add new files");
        continue;
      }
      merged.push_back(f);
    }
    normalized = std::move(merged);
    items = base.value("items", json::array());
    if (interface.empty()) interface = base.value("interface", "");
  }
  if (static_cast<int>(normalized.size()) > max_files + (replan ? limits.max_files : 0)) {
    errors.push_back("the plan has " + std::to_string(normalized.size()) + " files; at most " +
                     std::to_string(max_files) + " are allowed");
  }
  if (interface.size() > limits.max_interface) {
    errors.push_back("the interface notes are longer than " + std::to_string(limits.max_interface) + " characters");
  }
  resolve_module_names(normalized);
  check_graph(normalized, items, errors);
  if (errors.size() > 20) {
    const std::size_t more = errors.size() - 20;
    errors.resize(20);
    errors.push_back("... and " + std::to_string(more) + " more");
  }
  if (out.ok()) out.plan = {{"files", normalized}, {"interface", interface}, {"items", items}};
  return out;
}

Prompt build_plan_prompt(const json& task, const PlanLimits& limits) {
  const auto& p = task["payload"];
  const int max_files = file_limit(task, limits);
  Prompt prompt;
  std::ostringstream user;
  user << "Goal: " << p.value("goal", "") << "\n";
  if (task.value("type", "") == "REPLAN_TASK") {
    prompt.system =
        "You are a software architect. One file of a planned project failed its checks again and again. Reply with "
        "one JSON object and nothing else: {\"files\": [{\"path\": ..., \"description\": ..., \"language\": ..., "
        "\"depends_on\": [...]}]} holding that file with a clearer, smaller description, and, if it helps, new "
        "files it may depend on (paths not yet in the plan).";
    user << "\nThe plan:\n";
    for (const auto& f : p.value("plan", json::object()).value("files", json::array())) {
      user << "- " << f.value("path", "") << ": " << f.value("description", "");
      if (!f.value("depends_on", json::array()).empty()) user << " (depends on " << f["depends_on"].dump() << ")";
      user << "\n";
    }
    user << "\nThe file that failed: " << p.value("path", "") << "\nIts description: " << p.value("description", "")
         << "\nIts last content:\n```\n"
         << p.value("content", "").substr(0, 8000) << "\n```\nWhat its checks said:\n";
    for (const auto& d : p.value("diagnostics", json::array())) user << "- " << d.value("message", "") << "\n";
    prompt.user = user.str();
    return prompt;
  }
  // A concrete example rather than a template of placeholders: small models copied the
  // placeholders ("relative/path.ext") into their plans.
  prompt.system =
      "You are a software architect. List the files of the project the goal describes, as one JSON object and "
      "nothing else. Each file has a path (like app/main.py), a description of what it holds and exports, and "
      "depends_on: the paths of other files of the list that it imports (an empty list if none; no cycles). Example: "
      "{\"files\": [{\"path\": \"app/util.py\", \"description\": \"helpers\", \"depends_on\": []}, {\"path\": "
      "\"app/main.py\", \"description\": \"entry point\", \"depends_on\": [\"app/util.py\"]}], \"interface\": "
      "\"app.util exports helper()\"}. The interface notes name what each file exports, so the files fit together. "
      "At most " +
      std::to_string(max_files) + " files.";
  const auto& c = p.value("constraints", json::object());
  if (c.is_object() && !c.empty()) user << "Constraints: " << c.dump() << "\n";
  if (p.value("plan_attempt", 0) > 0) {
    user << "\nYour previous plan (attempt " << p.value("plan_attempt", 0) << ") was not usable:\n```\n"
         << p.value("previous_reply", "").substr(0, 8000) << "\n```\nWhat was wrong with it:\n";
    for (const auto& d : p.value("diagnostics", json::array())) user << "- " << d.value("message", "") << "\n";
    user << "Reply with a corrected plan.\n";
  }
  prompt.user = user.str();
  return prompt;
}

}  // namespace agentline::devfix
