#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "agentline/net/http_client.h"
#include "generator.h"
#include "plan.h"

extern char** environ;

namespace agentline::devfix {

namespace {

// The body of the fenced block that opens at `open`, and where the text after it starts.
std::pair<std::string, std::size_t> fenced_block(const std::string& reply, std::size_t open) {
  const auto line_end = reply.find('\n', open);
  if (line_end == std::string::npos) return {"", std::string::npos};
  const auto close = reply.find("```", line_end + 1);
  if (close == std::string::npos) return {reply.substr(line_end + 1), std::string::npos};
  return {reply.substr(line_end + 1, close - line_end - 1), close + 3};
}

std::string trim_blank_lines(const std::string& s) {
  std::size_t begin = 0;
  while (begin < s.size()) {
    const auto eol = s.find('\n', begin);
    if (eol == std::string::npos || s.find_first_not_of(" \t\r", begin) < eol) break;
    begin = eol + 1;
  }
  auto end = s.find_last_not_of(" \t\r\n");
  if (end == std::string::npos || end < begin) return "";
  return s.substr(begin, end + 1 - begin);
}

}  // namespace

std::string extract_code(const std::string& reply) {
  std::string best;
  bool found = false;
  for (std::size_t open = reply.find("```"); open != std::string::npos;) {
    auto [body, next] = fenced_block(reply, open);
    if (next == std::string::npos && body.empty() && reply.find('\n', open) == std::string::npos) break;
    if (!found || body.size() > best.size()) best = std::move(body);
    found = true;
    if (next == std::string::npos) break;
    open = reply.find("```", next);
  }
  return found ? best : trim_blank_lines(reply);
}

Generation parse_chat_completion(const std::string& body, const std::string& prompt_text, bool raw_reply,
                                 const std::string& default_model) {
  using Kind = GenerationError::Kind;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw GenerationError(Kind::kUnavailable, "LLM API reply is not JSON");
  if (doc.contains("error") && !doc["error"].is_null()) {
    const auto& e = doc["error"];
    const std::string what = e.is_object() ? e.value("message", e.dump()) : e.dump();
    throw GenerationError(Kind::kUnavailable, "LLM API answered 200 with an error: " + what.substr(0, 300));
  }
  if (!doc.contains("choices") || !doc["choices"].is_array() || doc["choices"].empty() ||
      !doc["choices"][0].is_object() || !doc["choices"][0].contains("message") ||
      !doc["choices"][0]["message"].is_object() ||
      !doc["choices"][0]["message"].value("content", nlohmann::json()).is_string()) {
    throw GenerationError(Kind::kUnavailable, "LLM API reply has no message content");
  }
  const auto& choice = doc["choices"][0];
  const std::string text = choice["message"]["content"].get<std::string>();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw GenerationError(Kind::kRejected, "the model replied with empty content", {}, "llm_empty_reply");
  }
  Generation g;
  g.content = raw_reply ? text : extract_code(text);
  if (g.content.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw GenerationError(Kind::kRejected, "the model's reply holds an empty code block", {}, "llm_empty_reply");
  }
  g.model = doc.value("model", default_model);
  if (!g.model.size()) g.model = default_model;
  g.finish_reason =
      choice.value("finish_reason", nlohmann::json()).is_string() ? choice["finish_reason"].get<std::string>() : "";
  const auto usage = doc.value("usage", nlohmann::json());
  if (usage.is_object() && usage.value("prompt_tokens", nlohmann::json()).is_number_integer()) {
    g.prompt_tokens = usage.value("prompt_tokens", std::int64_t{0});
    g.completion_tokens = usage.value("completion_tokens", std::int64_t{0});
  } else {
    g.usage_estimated = true;
    g.prompt_tokens = static_cast<std::int64_t>(prompt_text.size() / 4);
    g.completion_tokens = static_cast<std::int64_t>(text.size() / 4);
  }
  return g;
}

std::map<std::string, std::string> split_batch_reply(const std::string& reply, const std::vector<std::string>& paths) {
  std::map<std::string, std::string> out;
  for (const auto& path : paths) {
    const std::string marker = "File: " + path;
    std::size_t at = 0;
    // The marker must be a whole line (so "a.py" does not match "File: a.py.bak").
    while ((at = reply.find(marker, at)) != std::string::npos) {
      const std::size_t end = at + marker.size();
      const bool line_start = at == 0 || reply[at - 1] == '\n';
      const bool line_end = end == reply.size() || reply[end] == '\n' || reply[end] == '\r';
      if (line_start && line_end) break;
      at = end;
    }
    if (at == std::string::npos) continue;
    const std::string rest = reply.substr(at + marker.size());
    const auto open = rest.find("```");
    if (open == std::string::npos) continue;
    out[path] = fenced_block(rest, open).first;
  }
  return out;
}

std::map<std::string, Price> parse_prices(const std::string& json_text) {
  std::map<std::string, Price> out;
  auto doc = nlohmann::json::parse(json_text);
  for (const auto& [model, p] : doc.items()) {
    for (const auto& [k, v] : p.items()) {
      if (k != "prompt_per_1k" && k != "completion_per_1k")
        throw std::invalid_argument("prices: unknown key '" + k + "'");
    }
    out[model] = {p.value("prompt_per_1k", 0.0), p.value("completion_per_1k", 0.0)};
  }
  return out;
}

namespace {

// ---- OpenAI-compatible -------------------------------------------------------------------

class OpenAiGenerator final : public Generator {
 public:
  explicit OpenAiGenerator(OpenAiConfig config) : config_(std::move(config)) {}
  std::string backend() const override { return "openai"; }
  std::string model() const override { return config_.model; }

  Generation generate(const GenerationRequest& request) override {
    net::RateLimitFeedback feedback;
    const std::string body = complete(request.system_prompt, request.user_prompt, request.max_tokens,
                                      response_format(request), request.temperature_boost, &feedback);
    Generation g =
        parse_chat_completion(body, request.system_prompt + request.user_prompt, request.raw_reply, config_.model);
    g.cost_usd = cost(g.prompt_tokens, g.completion_tokens);
    g.feedback = std::move(feedback);
    return g;
  }

  std::vector<Generation> generate_batch(const std::vector<GenerationRequest>& requests) override {
    if (requests.size() == 1) return {generate(requests[0])};
    std::string user;
    std::vector<std::string> paths;
    int max_tokens = 0;
    for (const auto& r : requests) {
      user += (user.empty() ? "" : "\n----\n") + r.user_prompt;
      paths.push_back(r.path);
      max_tokens += r.max_tokens;
    }
    const std::string system = requests[0].system_prompt +
                               " Several files are requested: for each one, write a line `File: <path>` and then one "
                               "fenced code block with its complete content.";
    net::RateLimitFeedback feedback;
    const Generation r = parse_chat_completion(complete(system, user, max_tokens, nullptr, 0, &feedback), system + user,
                                               true, config_.model);
    if (r.finish_reason == "length") {
      throw GenerationError(GenerationError::Kind::kRejected, "the batched reply was cut at max_tokens", {},
                            "llm_truncated");
    }
    const auto files = split_batch_reply(r.content, paths);
    std::size_t total = 0;
    for (const auto& [p, c] : files) total += c.size();
    std::vector<Generation> out;
    for (const auto& req : requests) {
      auto it = files.find(req.path);
      if (it == files.end()) {
        throw GenerationError(GenerationError::Kind::kUnavailable, "the batched reply has no block for " + req.path);
      }
      Generation g;
      g.content = it->second;
      g.model = r.model;
      g.finish_reason = r.finish_reason;
      g.usage_estimated = r.usage_estimated;
      // Usage is per call: shared out by prompt count and content size.
      g.prompt_tokens = r.prompt_tokens / static_cast<std::int64_t>(requests.size());
      g.completion_tokens =
          total == 0 ? 0
                     : static_cast<std::int64_t>(static_cast<double>(r.completion_tokens) * it->second.size() / total);
      g.cost_usd = cost(g.prompt_tokens, g.completion_tokens);
      g.feedback = feedback;
      out.push_back(std::move(g));
    }
    return out;
  }

 private:
  double cost(std::int64_t prompt, std::int64_t completion) const {
    auto price = config_.prices.find(config_.model);
    if (price == config_.prices.end()) return 0;
    return static_cast<double>(prompt) / 1000 * price->second.prompt_per_1k +
           static_cast<double>(completion) / 1000 * price->second.completion_per_1k;
  }

  // The reply body of one chat-completions call with status 2xx; errors classified.
  // What a reply with a schema (a plan) asks the server for: --llm-structured-output.
  nlohmann::ordered_json response_format(const GenerationRequest& request) const {
    if (request.reply_schema.empty() || config_.structured_output == "none") return nullptr;
    if (config_.structured_output == "json_object") return {{"type", "json_object"}};
    const auto schema = nlohmann::ordered_json::parse(request.reply_schema);
    if (config_.structured_output == "json_object_schema") return {{"type", "json_object"}, {"schema", schema}};
    return {{"type", "json_schema"}, {"json_schema", {{"name", "reply"}, {"schema", schema}}}};
  }

  std::string complete(const std::string& system_prompt, const std::string& user_prompt, int max_tokens,
                       const nlohmann::ordered_json& response_format = nullptr, double temperature_boost = 0,
                       net::RateLimitFeedback* feedback_out = nullptr) {
    nlohmann::ordered_json body = {
        {"model", config_.model},
        {"temperature", std::min(1.0, config_.temperature + temperature_boost)},
        {"max_tokens", max_tokens},
        {"messages", {{{"role", "system"}, {"content", system_prompt}}, {{"role", "user"}, {"content", user_prompt}}}}};
    if (!response_format.is_null()) body["response_format"] = response_format;
    net::HttpRequest call;
    call.url = config_.base_url;
    while (!call.url.empty() && call.url.back() == '/') call.url.pop_back();
    call.url += "/chat/completions";
    call.headers.emplace_back("Content-Type", "application/json");
    if (!config_.api_key.empty()) {
      if (config_.auth_header == "Authorization")
        call.headers.emplace_back("Authorization", "Bearer " + config_.api_key);
      else
        call.headers.emplace_back(config_.auth_header, config_.api_key);
    }
    call.body = body.dump();
    call.timeout = config_.timeout;
    call.connect_timeout = config_.connect_timeout;
    const net::HttpResponse answer = net::http_call(call);
    if (answer.status == 0)
      throw GenerationError(GenerationError::Kind::kUnavailable, "LLM call failed: " + answer.error);
    const long status = answer.status;
    const std::string& reply = answer.body;
    const std::vector<std::pair<std::string, std::string>> reply_headers(answer.headers.begin(), answer.headers.end());
    auto feedback = net::RateLimitFeedback::from_headers(reply_headers);
    if (status == 429) {
      throw GenerationError(GenerationError::Kind::kRateLimited, "LLM API answered 429 (rate limited)", feedback);
    }
    if (status >= 500 || status == 408) {
      throw GenerationError(GenerationError::Kind::kUnavailable, "LLM API answered " + std::to_string(status),
                            feedback);
    }
    if (status >= 400) {
      throw GenerationError(GenerationError::Kind::kRejected,
                            "LLM API answered " + std::to_string(status) + ": " + reply.substr(0, 300));
    }
    if (feedback_out != nullptr) *feedback_out = std::move(feedback);
    return reply;
  }

  OpenAiConfig config_;
};

// ---- exec --------------------------------------------------------------------------------

class ExecGenerator final : public Generator {
 public:
  ExecGenerator(std::vector<std::string> argv, std::chrono::milliseconds timeout)
      : argv_(std::move(argv)), timeout_(timeout) {
    if (argv_.empty()) throw std::invalid_argument("exec generator: the command is empty");
  }
  std::string backend() const override { return "exec"; }
  std::string model() const override { return std::filesystem::path(argv_[0]).filename().string(); }

  Generation generate(const GenerationRequest& request) override {
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
      throw GenerationError(GenerationError::Kind::kUnavailable, "exec generator: pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    if (err != 0) {
      ::close(in_pipe[1]);
      ::close(out_pipe[0]);
      throw GenerationError(GenerationError::Kind::kRejected,
                            "exec generator: cannot start " + argv_[0] + ": " + std::strerror(err));
    }
    const std::string input = nlohmann::json{
        {"task", request.task},
        {"system_prompt", request.system_prompt},
        {"user_prompt",
         request.user_prompt}}.dump();
    std::string output;
    std::size_t written = 0;
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    bool timed_out = false;
    int in_fd = in_pipe[1];
    for (;;) {
      if (written == input.size() && in_fd >= 0) {
        ::close(in_fd);
        in_fd = -1;
      }
      pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      if (::poll(fds, in_fd >= 0 ? 2 : 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
      if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
        const ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) written = input.size();  // the command does not read stdin
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
        if (n <= 0) break;
        output.append(buf, static_cast<std::size_t>(n));
        if (output.size() > (64u << 20)) break;
      }
    }
    if (in_fd >= 0) ::close(in_fd);
    ::close(out_pipe[0]);
    if (timed_out) ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (timed_out) {
      throw GenerationError(GenerationError::Kind::kUnavailable, "exec generator: " + argv_[0] + " timed out after " +
                                                                     std::to_string(timeout_.count()) + " ms");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw GenerationError(GenerationError::Kind::kUnavailable,
                            "exec generator: " + argv_[0] + " failed (status " + std::to_string(status) + ")");
    }
    Generation g;
    g.content = std::move(output);
    g.model = model();
    return g;
  }

 private:
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
};

// ---- template (offline stand-in) -----------------------------------------------------------

class TemplateGenerator final : public Generator {
 public:
  std::string backend() const override { return "template"; }
  std::string model() const override { return "template-v1"; }

  Generation generate(const GenerationRequest& request) override {
    const auto& payload = request.task["payload"];
    Generation g;
    g.model = model();
    g.finish_reason = "stop";
    const std::string type = request.task.value("type", "");
    if (type == "PLAN_TASK" || type == "REPLAN_TASK") {
      g.content = type == "PLAN_TASK" ? plan(payload) : replan(payload);
    } else if (type == "REVIEW_TASK") {
      g.content = review(payload, request.fix_attempt);
    } else {
      const std::string description = payload.value("description", "");
      const bool never = description.find("[demo:never-passes]") != std::string::npos;
      const bool once = description.find("[demo:fails-qa-once]") != std::string::npos;
      const bool broken = never || (once && request.fix_attempt == 0);
      std::string summary = description;
      for (auto& c : summary) {
        if (c == '\n' || c == '"' || c == '\\' || c == '`' || c == '$') c = ' ';
      }
      // "[demo:job-fails-once]": the file passes its own checks but breaks the job (a missing
      // symbol, a failing test, an undefined function at link time) until its first fix;
      // "[demo:job-never-passes]": every time.
      const bool job_broken =
          description.find("[demo:job-never-passes]") != std::string::npos ||
          (description.find("[demo:job-fails-once]") != std::string::npos && request.fix_attempt == 0);
      const std::string lang = language_of(request.path);
      if (payload.contains("job") && lang == "python") {
        g.content = render_planned_python(request.path, summary, broken, job_broken, payload);
      } else if (payload.contains("job") && (lang == "c" || lang == "cpp")) {
        g.content = render_planned_c(request.path, summary, job_broken, payload);
      } else {
        g.content = (job_broken && lang == "javascript" ? "require('./absent_module');\n" : "") +
                    render(lang, request.path, summary, broken);
      }
      // A fix after a review's finding changes the file (an unchanged file would get the same
      // review, from the cache).
      if (description.find("[demo:review-error-once]") != std::string::npos && request.fix_attempt > 0 &&
          lang == "python")
        g.content += "\n# Input is validated before use (review fix).\n";
    }
    g.prompt_tokens = static_cast<std::int64_t>((request.system_prompt.size() + request.user_prompt.size()) / 4);
    g.completion_tokens = static_cast<std::int64_t>(g.content.size() / 4);
    return g;
  }

 private:
  // A package name from the goal's first words ("a calculator CLI" -> "calculator_cli").
  static std::string package_of(std::string goal) {
    for (auto at = goal.find("[demo:"); at != std::string::npos; at = goal.find("[demo:")) {
      goal.erase(at, goal.find(']', at) == std::string::npos ? std::string::npos : goal.find(']', at) - at + 1);
    }
    std::vector<std::string> words;
    std::string word;
    for (std::size_t i = 0; i <= goal.size(); ++i) {
      const char c = i < goal.size() ? goal[i] : ' ';
      if (std::isalnum(static_cast<unsigned char>(c))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (!word.empty()) {
        if (word != "a" && word != "an" && word != "the") words.push_back(word);
        word.clear();
      }
    }
    std::string name;
    for (std::size_t i = 0; i < words.size() && i < 2; ++i) name += (i ? "_" : "") + words[i];
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])))
      name = "app" + std::string(name.empty() ? "" : "_") + name;
    return name.substr(0, 40);
  }

  // The template planner: a small package whose files depend on each other, deterministic for a
  // goal. "[demo:plan-invalid-once]" in the goal makes the first plan invalid (a cycle, prose
  // around it); "[demo:replan]" gives the CLI a description that never passes QA until replanned;
  // "[demo:chain-N]" plans N files, each importing the one before.
  static std::string plan(const nlohmann::json& payload) {
    const std::string goal = payload.value("goal", "");
    const auto constraints = payload.value("constraints", nlohmann::json::object());
    const std::string lang = constraints.is_object() ? constraints.value("language", "python") : "python";
    const int max_files = constraints.is_object() ? constraints.value("max_files", 50) : 50;
    const std::string pkg = package_of(goal);
    const bool invalid =
        goal.find("[demo:plan-invalid-once]") != std::string::npos && payload.value("plan_attempt", 0) == 0;
    const bool replan = goal.find("[demo:replan]") != std::string::npos;
    nlohmann::json files = nlohmann::json::array();
    auto add = [&](const std::string& path, const std::string& description, std::vector<std::string> deps) {
      files.push_back(
          {{"path", path}, {"description", description}, {"language", language_of(path)}, {"depends_on", deps}});
    };
    if (const auto chain = goal.find("[demo:chain-"); chain != std::string::npos) {
      // A chain of files, each depending on the one before: released strictly one by one.
      const int n = std::clamp(std::atoi(goal.c_str() + chain + 12), 1, 200);
      add(pkg + "/__init__.py", "Package marker", {});
      for (int i = 1; i <= n; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "/step%03d.py", i);
        char prev[32];
        std::snprintf(prev, sizeof prev, "/step%03d.py", i - 1);
        add(pkg + name, "Step " + std::to_string(i) + " of the chain",
            i == 1 ? std::vector<std::string>{} : std::vector<std::string>{pkg + prev});
      }
    } else if (lang == "javascript") {
      add("src/core.js", "The core logic of " + goal, {});
      add("src/cli.js", "Command line entry point that calls src/core.js", {"src/core.js"});
      add("README.md", "How to run it", {"src/cli.js"});
    } else {
      add(pkg + "/__init__.py", "Package marker", {});
      add(pkg + "/core.py", "The core logic of " + goal,
          invalid ? std::vector<std::string>{pkg + "/cli.py"} : std::vector<std::string>{});
      add(pkg + "/cli.py",
          std::string("Command line entry point that calls the core") + (replan ? " [demo:never-passes]" : ""),
          {pkg + "/core.py"});
      add("tests/test_core.py", "Tests of the core", {pkg + "/core.py"});
      add("README.md", "How to run it", {pkg + "/cli.py"});
    }
    // Honour max_files: keep the first files and the dependencies among them.
    if (static_cast<int>(files.size()) > max_files) files.erase(files.begin() + std::max(1, max_files), files.end());
    std::set<std::string> kept;
    for (const auto& f : files) kept.insert(f["path"].get<std::string>());
    for (auto& f : files) {
      nlohmann::json deps = nlohmann::json::array();
      for (const auto& d : f["depends_on"])
        if (kept.count(d.get<std::string>())) deps.push_back(d);
      f["depends_on"] = deps;
    }
    const nlohmann::json doc = {
        {"files", files},
        {"interface", "Every module defines <name>_info() returning its name; dependants import it."}};
    return "Here is the plan for the goal.\n```json\n" + doc.dump(2) + "\n```\nEach file lists what it imports.\n";
  }

  // The template's review: "[demo:review-error-once]" in the description gives an error finding
  // until the file's first fix, "[demo:review-warning]" a warning; otherwise no findings.
  static std::string review(const nlohmann::json& payload, int fix_attempt) {
    const std::string description = payload.value("description", "");
    const std::string reviewer = payload.value("reviewer", "");
    nlohmann::json findings = nlohmann::json::array();
    if (description.find("[demo:review-error-once]") != std::string::npos && fix_attempt == 0)
      findings.push_back({{"line", 1},
                          {"severity", "error"},
                          {"message", "the " + reviewer + " reviewer found input used unchecked"}});
    if (description.find("[demo:review-warning]") != std::string::npos)
      findings.push_back({{"line", 1}, {"severity", "warning"}, {"message", "consider a docstring per function"}});
    return nlohmann::json{{"findings", findings}}.dump();
  }

  // The template's replan: the file again without the demo marker, and a helper it uses.
  static std::string replan(const nlohmann::json& payload) {
    const std::string path = payload.value("path", "");
    std::string description = payload.value("description", "");
    for (const std::string marker : {" [demo:never-passes]", "[demo:never-passes]"}) {
      if (auto at = description.find(marker); at != std::string::npos) description.erase(at, marker.size());
    }
    const std::string helper = std::filesystem::path(path).parent_path().string() + "/helpers.py";
    nlohmann::json deps = nlohmann::json::array({helper});
    for (const auto& f : payload.value("plan", nlohmann::json::object()).value("files", nlohmann::json::array())) {
      if (f.value("path", "") == path)
        for (const auto& d : f.value("depends_on", nlohmann::json::array())) deps.push_back(d);
    }
    const nlohmann::json doc = {
        {"files",
         {{{"path", path}, {"description", description + " (smaller, with a helper)"}, {"depends_on", deps}},
          {{"path", helper}, {"description", "Helpers for " + path}, {"depends_on", nlohmann::json::array()}}}}};
    return doc.dump();
  }

  // A planned Python file that uses its dependencies: it imports the <name>_info() function it
  // finds in each dependency's content (the context its prompt carried), and calls it.
  static std::string render_planned_python(const std::string& path, const std::string& summary, bool broken,
                                           bool job_broken, const nlohmann::json& payload) {
    const std::string stem = std::filesystem::path(path).stem().string();
    if (stem == "__init__") return "\"\"\"" + summary + "\"\"\"\n";
    std::vector<std::pair<std::string, std::string>> imports;  // module, function
    for (const auto& f : payload.value("context_files", nlohmann::json::array())) {
      if (f.value("relation", "") != "dependency") continue;
      std::string dep = f.value("path", "");
      if (dep.size() < 4 || dep.substr(dep.size() - 3) != ".py") continue;
      const std::string content = f.value("content", "");
      const auto def = content.find("def ");
      const auto paren = content.find('(', def);
      if (def == std::string::npos || paren == std::string::npos) continue;
      std::string module = dep.substr(0, dep.size() - 3);
      std::replace(module.begin(), module.end(), '/', '.');
      imports.emplace_back(module, content.substr(def + 4, paren - def - 4));
    }
    std::string out = "\"\"\"" + summary + "\"\"\"\n";
    const bool test = stem.rfind("test_", 0) == 0;
    for (const auto& [module, fn] : imports) {
      // Broken for the job: a name the dependency does not define (each file alone is fine).
      out += "from " + module + " import " + fn + (job_broken && !test ? "_missing as " + fn : "") + "\n";
    }
    if (job_broken && !test && imports.empty()) {
      std::string package = std::filesystem::path(path).parent_path().string();
      std::replace(package.begin(), package.end(), '/', '.');
      out += "from " + (package.empty() ? std::string() : package + ".") + "absent_module import absent_info\n";
    }
    if (test) {
      for (const auto& [module, fn] : imports) {
        out +=
            "\n\ndef test_" + fn + "():\n    assert " + fn + "()" + (job_broken ? " == \"something else\"" : "") + "\n";
      }
      return broken ? out + "\ndef broken(:\n" : out;
    }
    out += "\n\ndef " + stem + "_info(" + (broken ? ":\n" : "):\n") + "    return \"" + stem + "\"\n";
    out += "\n\ndef main():\n    print(" + stem + "_info()";
    for (const auto& [module, fn] : imports) out += ", " + fn + "()";
    out += ")\n\n\nif __name__ == \"__main__\":\n    main()\n";
    return out;
  }

  // A planned C file: main.c calls <dependency>_info() of each dependency it was given; any other
  // file defines <stem>_info(). Broken for the job, main calls a function nothing defines.
  static std::string render_planned_c(const std::string& path, const std::string& summary, bool job_broken,
                                      const nlohmann::json& payload) {
    const std::string stem = std::filesystem::path(path).stem().string();
    std::string out = "/* " + summary + " */\n";
    if (stem != "main") return out + "int " + stem + "_info(void) { return " + std::to_string(stem.size()) + "; }\n";
    std::vector<std::string> calls;
    for (const auto& f : payload.value("context_files", nlohmann::json::array())) {
      if (f.value("relation", "") != "dependency") continue;
      const std::string dep = std::filesystem::path(f.value("path", "")).stem().string();
      calls.push_back(dep + "_info" + (job_broken ? "_missing" : ""));
    }
    if (job_broken && calls.empty()) calls.push_back("absent_info");
    out += "#include <stdio.h>\n\n";
    for (const auto& c : calls) out += "int " + c + "(void);\n";
    out += "\nint main(void) {\n  int total = 0;\n";
    for (const auto& c : calls) out += "  total += " + c + "();\n";
    return out + "  printf(\"%d\\n\", total);\n  return 0;\n}\n";
  }

  static std::string render(const std::string& lang, const std::string& path, const std::string& summary, bool broken) {
    const std::string stem = std::filesystem::path(path).stem().string();
    if (lang == "python") {
      return "\"\"\"" + summary + "\"\"\"\n\n\ndef " + (broken ? "main(:\n" : "main():\n") + "    print(\"" + stem +
             "\")\n\n\nif __name__ == \"__main__\":\n    main()\n";
    }
    if (lang == "javascript" || lang == "typescript") {
      return "// " + summary + "\n" + (broken ? "function main( {\n" : "function main() {\n") + "  console.log('" +
             stem + "');\n}\n\nmain();\n";
    }
    if (lang == "c" || lang == "cpp") {
      return "/* " + summary + " */\n#include <stdio.h>\n\nint main(void) {\n  puts(\"" + stem + "\");\n  return 0" +
             (broken ? "\n" : ";\n") + "}\n";
    }
    if (lang == "shell") {
      return "#!/bin/sh\n# " + summary + "\n" +
             (broken ? "if true; then\n  echo " + stem + "\n" : "echo " + stem + "\n");
    }
    if (lang == "json") {
      return broken ? "{\"name\": \"" + stem + "\",}\n"
                    : "{\n  \"name\": \"" + stem + "\",\n  \"description\": \"" + summary + "\"\n}\n";
    }
    if (lang == "yaml") {
      return broken ? "name: [" + stem + "\n" : "name: " + stem + "\ndescription: \"" + summary + "\"\n";
    }
    return "# " + stem + "\n\n" + summary + "\n";
  }
};

}  // namespace

std::unique_ptr<Generator> make_openai_generator(OpenAiConfig config) {
  return std::make_unique<OpenAiGenerator>(std::move(config));
}
std::unique_ptr<Generator> make_exec_generator(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  return std::make_unique<ExecGenerator>(std::move(argv), timeout);
}
std::unique_ptr<Generator> make_template_generator() { return std::make_unique<TemplateGenerator>(); }

}  // namespace agentline::devfix
