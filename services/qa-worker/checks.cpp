#include "checks.h"

#include "agentline/config/resources.h"

#include <charconv>
#include <filesystem>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace agentline::qa {

// Its embedded files (agentline_embed in CMakeLists.txt).
std::optional<std::string_view> embedded_file(std::string_view path);

namespace {

// A line or column number from a tool's output; absurd values saturate instead of throwing.
int number(const std::string& digits) {
  long long value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) return 1 << 30;
  if (ec != std::errc() || value < 0) return 0;
  return static_cast<int>(std::min<long long>(value, 1 << 30));
}

}  // namespace

std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && len > 1) {
      // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (len == 2) ok = c >= 0xc2;
      if (len == 3) ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
      if (len == 4) ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90) && c <= 0xf4;
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

CheckTable CheckTable::defaults() {
  CheckTable t;
  const Check py{"py_compile", {"python3", "-m", "py_compile", "{file}"}, "python", {}};
  const Check pyflakes{
      "pyflakes", {"python3", "-m", "pyflakes", "{file}"}, "pyflakes", {"python3", "-c", "import pyflakes"}};
  const Check c{"gcc", {"gcc", "-fsyntax-only", "-x", "c", "{file}"}, "gcc", {}};
  const Check cpp{"g++", {"g++", "-fsyntax-only", "-x", "c++", "-std=c++20", "{file}"}, "gcc", {}};
  const Check js{"node_check", {"node", "--check", "{file}"}, "node", {}};
  const Check sh{"bash_n", {"bash", "-n", "{file}"}, "bash", {}};
  // -S warning: notes and style hints are not reported; -f gcc: the gcc parser reads it.
  const Check shellcheck{
      "shellcheck", {"shellcheck", "-f", "gcc", "-S", "warning", "{file}"}, "gcc", {"shellcheck", "--version"}};
  const Check json{
      "json_parse", {"python3", "-c", "import json,sys; json.load(open(sys.argv[1]))", "{file}"}, "json", {}};
  const Check yaml{
      "yaml_parse", {"python3", "-c", "import yaml,sys; yaml.safe_load(open(sys.argv[1]))", "{file}"}, "yaml", {}};
  t.by_extension_[".py"] = {py, pyflakes};
  for (const char* e : {".c", ".h"}) t.by_extension_[e] = {c};
  for (const char* e : {".cc", ".cpp", ".cxx", ".hpp", ".hh"}) t.by_extension_[e] = {cpp};
  for (const char* e : {".js", ".mjs", ".cjs"}) t.by_extension_[e] = {js};
  for (const char* e : {".sh", ".bash"}) t.by_extension_[e] = {sh, shellcheck};
  t.by_extension_[".json"] = {json};
  for (const char* e : {".yaml", ".yml"}) t.by_extension_[e] = {yaml};
  return t;
}

CheckTable CheckTable::job_defaults() {
  CheckTable t;
  const std::string driver(*embedded_file("services/qa-worker/job_check.py"));
  auto kind = [&](const char* name, const char* kind) {
    return Check{name, {"python3", "-c", driver, kind}, "agentline", {}};
  };
  t.by_extension_[".py"] = {kind("python_imports_and_tests", "python")};
  for (const char* e : {".c", ".cc", ".cpp", ".cxx"}) t.by_extension_[e] = {kind("c_build_and_link", "c")};
  for (const char* e : {".js", ".mjs", ".cjs"}) t.by_extension_[e] = {kind("node_load", "node")};
  return t;
}

namespace {

Check parse_check(const std::string& ext, const nlohmann::json& entry) {
  static const std::vector<std::string> kParsers{"gcc",  "python",   "node",      "bash", "json",
                                                 "yaml", "pyflakes", "agentline", "plain"};
  if (!entry.is_object()) throw std::invalid_argument("command table: " + ext + " must map to an object or a list");
  auto strings = [&](const nlohmann::json& v, const std::string& key) {
    std::vector<std::string> out;
    if (!v.is_array() || v.empty()) throw std::invalid_argument("command table: " + ext + ": " + key + " is a list");
    for (const auto& a : v) {
      if (!a.is_string()) throw std::invalid_argument("command table: " + ext + ": " + key + " holds strings only");
      out.push_back(a);
    }
    return out;
  };
  Check check;
  for (const auto& [k, v] : entry.items()) {
    if (k == "name" && v.is_string()) {
      check.name = v;
    } else if (k == "argv") {
      check.argv = strings(v, k);
    } else if (k == "probe") {
      check.probe = strings(v, k);
    } else if (k == "parser" && v.is_string() &&
               std::find(kParsers.begin(), kParsers.end(), v.get<std::string>()) != kParsers.end()) {
      check.parser = v;
    } else {
      throw std::invalid_argument("command table: " + ext + ": bad or unknown key '" + k + "'");
    }
  }
  if (check.argv.empty()) throw std::invalid_argument("command table: " + ext + " has no argv");
  if (check.name.empty()) check.name = check.argv[0];
  return check;
}

}  // namespace

void CheckTable::merge(const std::string& json_text) {
  auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw std::invalid_argument("command table: not a JSON object");
  for (const auto& [ext, entry] : doc.items()) {
    if (ext.empty() || ext[0] != '.')
      throw std::invalid_argument("command table: '" + ext + "' is not an extension (.py)");
    std::vector<Check> checks;
    if (entry.is_array()) {
      for (const auto& e : entry) checks.push_back(parse_check(ext, e));
      if (checks.empty()) throw std::invalid_argument("command table: " + ext + " has an empty list");
    } else {
      checks.push_back(parse_check(ext, entry));
    }
    by_extension_[ext] = std::move(checks);
  }
}

std::vector<Check> CheckTable::for_path(const std::string& path) const {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = by_extension_.find(ext);
  if (it == by_extension_.end()) return {};
  return it->second;
}

std::vector<Check> CheckTable::for_paths(const std::vector<std::string>& paths) const {
  std::vector<Check> out;
  for (const auto& p : paths) {
    for (auto& c : for_path(p)) {
      if (std::none_of(out.begin(), out.end(), [&](const Check& o) { return o.name == c.name; }))
        out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<std::string> CheckTable::drop_unavailable(
    const std::function<bool(const std::vector<std::string>&)>& works) {
  std::map<std::string, bool> probed;  // by check name: the same tool is probed once
  std::vector<std::string> dropped;
  for (auto& [ext, checks] : by_extension_) {
    for (auto it = checks.begin(); it != checks.end();) {
      if (it->probe.empty()) {
        ++it;
        continue;
      }
      auto [p, fresh] = probed.try_emplace(it->name, false);
      if (fresh) {
        p->second = works(it->probe);
        if (!p->second) dropped.push_back(it->name + ": `" + it->probe[0] + " ...` does not run in the sandbox");
      }
      it = p->second ? it + 1 : checks.erase(it);
    }
  }
  return dropped;
}

std::string pyflakes_severity(const std::string& message) {
  static const char* const kErrors[] = {"undefined name",
                                        "undefined local variable",
                                        "referenced before assignment",
                                        "syntax error",
                                        "invalid syntax",
                                        "outside function",
                                        "outside loop",
                                        "not properly in loop",
                                        "duplicate argument",
                                        "only allowed at module level",
                                        "import * only allowed",
                                        "default except: must be last",
                                        "two starred expressions",
                                        "too many expressions in star-unpacking",
                                        "is not defined",
                                        "unexpected indent",
                                        "expected an indented block",
                                        "unindent does not match",
                                        "'...' % ... has",
                                        "'...'.format(...) has"};
  for (const char* e : kErrors) {
    if (message.find(e) != std::string::npos) return "error";
  }
  return "warning";
}

namespace {

nlohmann::json diagnostic(const std::string& path, int line, int column, const std::string& severity,
                          const std::string& message, const std::string& check) {
  // At most 4000 bytes, not cutting a UTF-8 sequence in two.
  std::size_t cut = std::min<std::size_t>(message.size(), 4000);
  while (cut < message.size() && cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xc0) == 0x80) --cut;
  nlohmann::json d = {{"file", path}, {"message", message.substr(0, cut)}, {"severity", severity}, {"check", check}};
  if (line > 0) d["line"] = line;
  if (column > 0) d["column"] = column;
  return d;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string last_nonempty_line(const std::string& output) {
  std::istringstream in(output);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last;
}

}  // namespace

nlohmann::json parse_diagnostics(const std::string& parser, const std::string& raw_output,
                                 const std::string& sandbox_name, const std::string& path, const std::string& check) {
  // Name the task's path, not the sandbox's.
  std::string output = replace_all(valid_utf8(raw_output), "/work/" + sandbox_name, path);
  output = replace_all(output, sandbox_name, path);
  auto diags = nlohmann::json::array();
  std::istringstream in(output);
  std::string line;
  std::smatch m;
  if (parser == "gcc") {
    static const std::regex re(R"(^(.*?):(\d+):(?:(\d+):)? (fatal error|error|warning): (.*)$)");
    while (std::getline(in, line) && diags.size() < 200) {
      if (std::regex_match(line, m, re)) {
        const std::string sev = m[4] == "warning" ? "warning" : "error";
        diags.push_back(diagnostic(path, number(m[2]), m[3].matched ? number(m[3]) : 0, sev, m[5], check));
      }
    }
  } else if (parser == "python" || parser == "json" || parser == "yaml") {
    int line_no = 0, col = 0;
    static const std::regex py_line(R"re(File ".*", line (\d+))re");
    static const std::regex json_pos(R"(line (\d+) column (\d+))");
    static const std::regex yaml_pos(R"(line (\d+), column (\d+))");
    const std::regex& re = parser == "python" ? py_line : parser == "json" ? json_pos : yaml_pos;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), re); it != std::sregex_iterator(); ++it) {
      line_no = number((*it)[1]);
      if (it->size() > 2 && (*it)[2].matched) col = number((*it)[2]);
    }
    std::string message = last_nonempty_line(output);
    if (parser == "yaml") {
      // PyYAML spreads its message over lines between "in <file>, line N" markers.
      message.clear();
      std::istringstream lines(output);
      bool started = false;
      while (std::getline(lines, line)) {
        const auto t = line.find_first_not_of(' ');
        if (t == std::string::npos) continue;
        const std::string body = line.substr(t);
        if (body.rfind("yaml.", 0) == 0) started = true;
        if (!started || body.rfind("in \"", 0) == 0 || body.rfind("File ", 0) == 0) continue;
        message += (message.empty() ? "" : " ") + body;
      }
      if (message.empty()) message = last_nonempty_line(output);
    }
    if (!message.empty()) diags.push_back(diagnostic(path, line_no, col, "error", message, check));
  } else if (parser == "node") {
    static const std::regex first(R"(^(.*):(\d+)$)");
    int line_no = 0;
    if (std::getline(in, line) && std::regex_match(line, m, first)) line_no = number(m[2]);
    std::string message;
    std::istringstream all(output);
    while (std::getline(all, line)) {
      if (line.find("Error:") != std::string::npos && line.rfind("    at ", 0) != 0) {
        message = line;
        break;
      }
    }
    if (message.empty()) message = last_nonempty_line(output);
    if (!message.empty()) diags.push_back(diagnostic(path, line_no, 0, "error", message, check));
  } else if (parser == "pyflakes") {
    static const std::regex re(R"(^(.*?):(\d+):(?:(\d+):?)? (.*)$)");
    while (std::getline(in, line) && diags.size() < 200) {
      if (std::regex_match(line, m, re) && m[1] == path) {
        diags.push_back(
            diagnostic(path, number(m[2]), m[3].matched ? number(m[3]) : 0, pyflakes_severity(m[4]), m[4], check));
      }
    }
  } else if (parser == "bash") {
    static const std::regex re(R"(^.*: line (\d+): (.*)$)");
    while (std::getline(in, line) && diags.size() < 200) {
      if (std::regex_match(line, m, re)) diags.push_back(diagnostic(path, number(m[1]), 0, "error", m[2], check));
    }
  }
  if (diags.empty() && output.find_first_not_of(" \t\r\n") != std::string::npos) {
    diags.push_back(diagnostic(path, 0, 0, "error", output, check));
  }
  return diags;
}

nlohmann::json parse_job_diagnostics(const std::string& parser, const std::string& raw_output, const std::string& check,
                                     std::string* skipped) {
  const std::string output = replace_all(valid_utf8(raw_output), "/work/", "");
  auto diags = nlohmann::json::array();
  std::istringstream in(output);
  std::string line;
  std::smatch m;
  if (parser == "agentline") {
    // The driver's findings, one JSON object per line after the marker; other lines are the
    // tools' own output.
    static const std::string kMarker = "@@agentline ";
    while (std::getline(in, line) && diags.size() < 500) {
      if (line.rfind(kMarker, 0) != 0) continue;
      auto d = nlohmann::json::parse(line.substr(kMarker.size()), nullptr, false);
      if (skipped && d.is_object() && d.contains("skipped") && d["skipped"].is_string()) *skipped = d["skipped"];
      if (d.is_discarded() || !d.is_object() || !d.contains("message") || !d["message"].is_string()) continue;
      // Typed reads: a line that is not the driver's shape gives defaults, never an exception.
      auto text = [&](const char* key, const std::string& fallback) {
        return d.contains(key) && d[key].is_string() ? d[key].get<std::string>() : fallback;
      };
      auto integer = [&](const char* key) {
        return d.contains(key) && d[key].is_number_integer() ? number(std::to_string(d[key].get<long long>())) : 0;
      };
      const std::string severity = text("severity", "error");
      nlohmann::json out = diagnostic(text("file", ""), integer("line"), integer("column"),
                                      severity == "warning" || severity == "info" ? severity : "error",
                                      d["message"].get<std::string>(), text("check", check));
      for (const char* list : {"related", "via"}) {
        if (!d.contains(list) || !d[list].is_array()) continue;
        out[list] = nlohmann::json::array();
        for (const auto& r : d[list]) {
          if (r.is_string() && out[list].size() < 50) out[list].push_back(r);
        }
      }
      if (d.contains("kind") && d["kind"].is_string()) out["kind"] = d["kind"];
      diags.push_back(std::move(out));
    }
    return diags;
  }
  if (parser == "gcc") {
    static const std::regex re(R"(^(.*?):(\d+):(?:(\d+):)? (fatal error|error|warning): (.*)$)");
    while (std::getline(in, line) && diags.size() < 500) {
      if (std::regex_match(line, m, re)) {
        diags.push_back(diagnostic(m[1], number(m[2]), m[3].matched ? number(m[3]) : 0,
                                   m[4] == "warning" ? "warning" : "error", m[5], check));
      }
    }
  }
  if (diags.empty() && output.find_first_not_of(" \t\r\n") != std::string::npos) {
    diags.push_back(diagnostic("", 0, 0, "error", output, check));
  }
  return diags;
}

}  // namespace agentline::qa
