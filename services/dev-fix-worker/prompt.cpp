#include "prompt.h"

#include <filesystem>
#include <sstream>

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
        user << "- ";
        if (d.contains("line")) user << "line " << d["line"].dump() << ": ";
        user << d.value("message", "") << "\n";
      }
    }
    user << "Fix every diagnostic; keep what already works.\n";
  }
  if (p.contains("context_files") && p["context_files"].is_array()) {
    std::size_t budget = context_budget_chars;
    for (const auto& f : p["context_files"]) {
      if (!f.is_object() || !f.contains("path") || !f.contains("content") || budget == 0) continue;
      std::string body = compact_source(f["path"].get<std::string>(), f["content"].get<std::string>());
      if (body.size() > budget) body = body.substr(0, budget) + "\n... (cut to the context budget)\n";
      budget -= std::min(budget, body.size());
      user << "\nContext file " << f["path"].get<std::string>() << ":\n```\n" << body << "```\n";
    }
  }
  prompt.user = user.str();
  return prompt;
}

}  // namespace agentline::devfix
