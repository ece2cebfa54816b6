#include "review.h"

#include <map>
#include <sstream>

#include "plan.h"

namespace agentline::devfix {
namespace {

const std::map<std::string, std::string>& focus() {
  static const std::map<std::string, std::string> kFocus{
      {"security",
       "injection (SQL, shell, eval), unsafe deserialization, commands or paths built from input without "
       "validation, secrets in code, missing checks on untrusted input"},
      {"correctness",
       "logic errors, wrong results, unhandled edge cases (empty input, zero, None), code that contradicts its "
       "description, its interface notes or the tests that use it"},
  };
  return kFocus;
}

}  // namespace

Prompt build_review_prompt(const nlohmann::json& task, const std::string& reviewer, std::size_t context_budget_chars) {
  // The file's own prompt gives the job's context (goal, interface, dependencies) within the budget.
  nlohmann::json as_dev = task;
  as_dev["type"] = "DEV_TASK";
  const Prompt context = build_prompt(as_dev, context_budget_chars);
  const auto& p = task["payload"];
  const auto known = focus().find(reviewer);
  Prompt prompt;
  prompt.system = "You are the " + reviewer +
                  " reviewer of a code generation pipeline. Reply with JSON only: {\"findings\": [{\"line\": "
                  "<number>, \"severity\": \"error\" or \"warning\", \"message\": \"...\"}]}. An error is a defect "
                  "that must be fixed before the file ships; a warning is worth fixing. No findings: "
                  "{\"findings\": []}.";
  std::ostringstream user;
  user << "Review this file for " << (known != focus().end() ? known->second : reviewer + " problems") << ".\n\n"
       << context.user << "\nThe file as written:\n```\n"
       << p.value("content", "") << "\n```\n";
  prompt.user = user.str();
  return prompt;
}

std::string review_reply_schema() {
  return R"({"type": "object", "properties": {"findings": {"type": "array", "items": {"type": "object", )"
         R"("properties": {"line": {"type": "integer"}, "severity": {"type": "string", "enum": ["error", "warning"]}, )"
         R"("message": {"type": "string"}}, "required": ["line", "severity", "message"]}}}, "required": ["findings"]})";
}

nlohmann::json parse_review(const std::string& reply, const std::string& path, const std::string& reviewer,
                            bool* readable) {
  const std::string check = "review:" + reviewer;
  nlohmann::json out = nlohmann::json::array();
  const nlohmann::json doc = extract_json(reply);
  const nlohmann::json* findings = nullptr;
  if (doc.is_object() && doc.contains("findings") && doc["findings"].is_array()) findings = &doc["findings"];
  if (doc.is_array()) findings = &doc;
  if (readable) *readable = findings != nullptr;
  if (!findings) {
    out.push_back({{"file", path},
                   {"severity", "warning"},
                   {"check", check},
                   {"message", "the " + reviewer + " review's reply held no readable findings"}});
    return out;
  }
  for (const auto& f : *findings) {
    if (!f.is_object() || !f.contains("message") || !f["message"].is_string() || out.size() >= 50) continue;
    std::string message = f["message"];
    if (message.empty()) continue;
    if (message.size() > 2000) {
      std::size_t cut = 2000;
      while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xc0) == 0x80) --cut;  // whole UTF-8 sequences
      message.resize(cut);
    }
    const bool error = f.contains("severity") && f["severity"].is_string() && f["severity"] == "error";
    nlohmann::json d = {
        {"file", path}, {"severity", error ? "error" : "warning"}, {"check", check}, {"message", message}};
    if (f.contains("line") && f["line"].is_number_integer() && f["line"].get<long long>() > 0 &&
        f["line"].get<long long>() < (1 << 30))
      d["line"] = f["line"].get<int>();
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace agentline::devfix
