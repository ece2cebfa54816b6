#include "prompt.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <vector>

namespace agentline::devfix {
namespace {

std::string trim_left(const std::string& s) {
  const auto i = s.find_first_not_of(" \t");
  return i == std::string::npos ? "" : s.substr(i);
}

}  // namespace

std::string compact_source(const std::string& path, const std::string& content) {
  const std::string ext = std::filesystem::path(path).extension().string();
  const bool hash_comments = ext == ".py" || ext == ".sh" || ext == ".rb" || ext == ".yaml" || ext == ".yml";
  const bool c_comments = ext == ".c" || ext == ".h" || ext == ".cpp" || ext == ".cc" || ext == ".hpp" ||
                          ext == ".js" || ext == ".ts" || ext == ".java" || ext == ".go" || ext == ".rs";
  std::istringstream in(content);
  std::string line;
  std::string out;
  bool in_block = false;     // /* ... */
  std::string in_docstring;  // """ or '''
  bool last_blank = false;
  while (std::getline(in, line)) {
    const std::string t = trim_left(line);
    if (!in_docstring.empty()) {
      if (t.find(in_docstring) != std::string::npos) in_docstring.clear();
      continue;
    }
    if (in_block) {
      if (t.find("*/") != std::string::npos) in_block = false;
      continue;
    }
    if (ext == ".py" && (t.rfind("\"\"\"", 0) == 0 || t.rfind("'''", 0) == 0)) {
      const std::string q = t.substr(0, 3);
      if (t.size() < 6 || t.find(q, 3) == std::string::npos) in_docstring = q;
      continue;  // a docstring line (or its start)
    }
    if (hash_comments && t.rfind("#", 0) == 0 && t.rfind("#!", 0) != 0) continue;
    if (c_comments && t.rfind("//", 0) == 0) continue;
    if (c_comments && t.rfind("/*", 0) == 0) {
      if (t.find("*/") == std::string::npos) in_block = true;
      continue;
    }
    const bool blank = t.empty();
    if (blank && last_blank) continue;
    last_blank = blank;
    out += line;
    out += '\n';
  }
  return out;
}

namespace {

// One optional part of a prompt, filled in the order of its rank within what is left of the
// budget (see prompt.h), written in the order of the prompt.
struct Part {
  std::string text;
  bool cut = false;
};

// Takes up to `budget` characters of `body`; a body that does not fit is cut with a note.
std::string within(std::string body, std::size_t& budget) {
  if (body.size() > budget) body = body.substr(0, budget) + "\n... (cut to the context budget)\n";
  budget -= std::min(budget, body.size());
  return body;
}

std::string file_block(const nlohmann::json& f, std::size_t& budget) {
  const std::string path = f["path"].get<std::string>();
  const std::string body = within(compact_source(path, f["content"].get<std::string>()), budget);
  return "\nContext file " + path + ":\n```\n" + body + "```\n";
}

}  // namespace

Prompt build_prompt(const nlohmann::json& task, std::size_t context_budget_chars) {
  const auto& p = task["payload"];
  const std::string path = p["path"];
  Prompt prompt;
  prompt.system =
      "You are a careful software engineer. Reply with the complete content of the requested file in one fenced "
      "code block, and nothing else.";
  std::ostringstream user;
  user << "File: " << path << "\n";
  if (p.contains("language")) user << "Language: " << p["language"].get<std::string>() << "\n";
  user << "Task: " << p.value("description", "") << "\n";
  if (task.value("type", "") == "FIX_TASK") {
    user << "\nThis file failed its checks (fix attempt " << p.value("fix_attempt", 1) << "). Previous content:\n```\n"
         << p.value("previous_content", "") << "\n```\nDiagnostics:\n";
    if (p.contains("diagnostics") && p["diagnostics"].is_array()) {
      for (const auto& d : p["diagnostics"]) {
        if (!d.is_object()) continue;
        user << "- ";
        const std::string file = d.contains("file") && d["file"].is_string() ? d["file"].get<std::string>() : "";
        if (!file.empty() && file != path) user << file << " ";
        if (d.contains("line")) user << "line " << d["line"].dump() << ": ";
        if (d.value("severity", "error") == "warning") user << "(warning) ";
        if (d.contains("check") && d["check"].is_string()) user << "[" << d["check"].get<std::string>() << "] ";
        user << (d.contains("message") && d["message"].is_string() ? d["message"].get<std::string>() : "") << "\n";
      }
      if (p.contains("job_check_attempt"))
        user << "These come from checking the whole job together: the file alone passed its own checks.\n";
    }
    user << "Fix every diagnostic; keep what already works.\n";
  }

  // The job's context, by rank: the goal, the dependencies' content, the interface notes, the
  // plan's file list, then the content of other files (dependants first).
  const nlohmann::json job = p.contains("job") && p["job"].is_object() ? p["job"] : nlohmann::json::object();
  std::vector<nlohmann::json> dependencies, others;
  if (p.contains("context_files") && p["context_files"].is_array()) {
    for (const auto& f : p["context_files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("content") ||
          !f["content"].is_string())
        continue;
      (f.value("relation", "") == "dependency" ? dependencies : others).push_back(f);
    }
    std::stable_sort(others.begin(), others.end(), [](const auto& a, const auto& b) {
      return (a.value("relation", "") == "dependant") > (b.value("relation", "") == "dependant");
    });
  }
  std::size_t budget = context_budget_chars;
  Part goal, deps, interface, plan, rest;
  if (job.contains("goal") && job["goal"].is_string())
    goal.text = "\nThe job's goal: " + within(job["goal"].get<std::string>(), budget) + "\n";
  for (const auto& f : dependencies) deps.text += budget > 0 ? file_block(f, budget) : "";
  if (job.contains("interface") && job["interface"].is_string() && !job["interface"].get<std::string>().empty())
    interface.text =
        "\nInterface notes shared by the job's files:\n" + within(job["interface"].get<std::string>(), budget) + "\n";
  if (job.contains("files") && job["files"].is_array() && !job["files"].empty()) {
    std::string list;
    for (const auto& f : job["files"]) {
      if (!f.is_object()) continue;
      list += "- " + f.value("path", "") + ": " + f.value("description", "");
      const auto d = f.value("depends_on", nlohmann::json::array());
      if (d.is_array() && !d.empty()) {
        list += " (imports";
        for (const auto& x : d) list += " " + (x.is_string() ? x.get<std::string>() : x.dump());
        list += ")";
      }
      list += "\n";
    }
    plan.text = "\nThe job's files (this one is " + path + "):\n" + within(list, budget);
  }
  for (const auto& f : others) rest.text += budget > 0 ? file_block(f, budget) : "";
  if (p.contains("dependency_failures") && p["dependency_failures"].is_array()) {
    for (const auto& d : p["dependency_failures"]) {
      if (!d.is_object()) continue;
      deps.text += "\nDependency " + d.value("path", "") + " could not be completed (" + d.value("reason", "") +
                   "): write this file against its description in the plan.\n";
    }
  }
  user << goal.text << interface.text << plan.text;
  if (!dependencies.empty()) user << "\nThe files it depends on, as they were delivered:";
  user << deps.text << rest.text;
  prompt.user = user.str();
  return prompt;
}

}  // namespace agentline::devfix
