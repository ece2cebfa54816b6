#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "generator.h"

extern char** environ;

namespace agentline::devfix {

std::string extract_code(const std::string& reply) {
  const auto open = reply.find("```");
  if (open == std::string::npos) return reply;
  const auto line_end = reply.find('\n', open);
  if (line_end == std::string::npos) return reply;
  const auto close = reply.find("```", line_end + 1);
  if (close == std::string::npos) return reply.substr(line_end + 1);
  return reply.substr(line_end + 1, close - line_end - 1);
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
    if (rest.find("```") == std::string::npos) continue;
    out[path] = extract_code(rest);
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

size_t write_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > (64u << 20)) return 0;  // a 64 MiB reply is not a file
  body->append(data, size * n);
  return size * n;
}

size_t write_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    headers->emplace_back(line.substr(0, colon), value);
  }
  return size * n;
}

class OpenAiGenerator final : public Generator {
 public:
  explicit OpenAiGenerator(OpenAiConfig config) : config_(std::move(config)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  std::string backend() const override { return "openai"; }
  std::string model() const override { return config_.model; }

  Generation generate(const GenerationRequest& request) override {
    const Reply r = complete(request.system_prompt, request.user_prompt, request.max_tokens);
    Generation g;
    g.content = extract_code(r.text);
    g.model = r.model;
    g.prompt_tokens = r.prompt_tokens;
    g.completion_tokens = r.completion_tokens;
    g.cost_usd = cost(r.prompt_tokens, r.completion_tokens);
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
    const Reply r = complete(system, user, max_tokens);
    const auto files = split_batch_reply(r.text, paths);
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
      // Usage is per call: shared out by prompt count and content size.
      g.prompt_tokens = r.prompt_tokens / static_cast<std::int64_t>(requests.size());
      g.completion_tokens =
          total == 0 ? 0
                     : static_cast<std::int64_t>(static_cast<double>(r.completion_tokens) * it->second.size() / total);
      g.cost_usd = cost(g.prompt_tokens, g.completion_tokens);
      out.push_back(std::move(g));
    }
    return out;
  }

 private:
  struct Reply {
    std::string text;
    std::string model;
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
  };

  double cost(std::int64_t prompt, std::int64_t completion) const {
    auto price = config_.prices.find(config_.model);
    if (price == config_.prices.end()) return 0;
    return static_cast<double>(prompt) / 1000 * price->second.prompt_per_1k +
           static_cast<double>(completion) / 1000 * price->second.completion_per_1k;
  }

  Reply complete(const std::string& system_prompt, const std::string& user_prompt, int max_tokens) {
    nlohmann::json body = {
        {"model", config_.model},
        {"temperature", config_.temperature},
        {"max_tokens", max_tokens},
        {"messages", {{{"role", "system"}, {"content", system_prompt}}, {{"role", "user"}, {"content", user_prompt}}}}};
    const std::string payload = body.dump();
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw GenerationError(GenerationError::Kind::kUnavailable, "curl_easy_init failed");
    std::string url = config_.base_url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/chat/completions";
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (!config_.api_key.empty()) {
      const std::string auth = config_.auth_header == "Authorization" ? "Authorization: Bearer " + config_.api_key
                                                                      : config_.auth_header + ": " + config_.api_key;
      headers = curl_slist_append(headers, auth.c_str());
    }
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, curl_slist_free_all);
    std::string reply;
    std::vector<std::pair<std::string, std::string>> reply_headers;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, write_header);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &reply_headers);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout.count()));
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    const CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) {
      throw GenerationError(GenerationError::Kind::kUnavailable,
                            std::string("LLM call failed: ") + curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    auto feedback = resilience::RateLimitFeedback::from_headers(reply_headers);
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
    auto doc = nlohmann::json::parse(reply, nullptr, false);
    if (doc.is_discarded() || !doc.contains("choices") || !doc["choices"].is_array() || doc["choices"].empty() ||
        !doc["choices"][0].contains("message") ||
        !doc["choices"][0]["message"].value("content", nlohmann::json()).is_string()) {
      throw GenerationError(GenerationError::Kind::kUnavailable, "LLM API reply has no message content");
    }
    Reply r;
    r.text = doc["choices"][0]["message"]["content"].get<std::string>();
    r.model = doc.value("model", config_.model);
    if (doc.contains("usage") && doc["usage"].is_object()) {
      r.prompt_tokens = doc["usage"].value("prompt_tokens", std::int64_t{0});
      r.completion_tokens = doc["usage"].value("completion_tokens", std::int64_t{0});
    }
    return r;
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

std::string language_of(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".py") return "python";
  if (ext == ".js" || ext == ".mjs") return "javascript";
  if (ext == ".ts") return "typescript";
  if (ext == ".c" || ext == ".h") return "c";
  if (ext == ".cpp" || ext == ".cc" || ext == ".hpp") return "cpp";
  if (ext == ".sh") return "shell";
  if (ext == ".json") return "json";
  if (ext == ".yaml" || ext == ".yml") return "yaml";
  if (ext == ".md") return "markdown";
  return "text";
}

class TemplateGenerator final : public Generator {
 public:
  std::string backend() const override { return "template"; }
  std::string model() const override { return "template-v1"; }

  Generation generate(const GenerationRequest& request) override {
    const auto& payload = request.task["payload"];
    const std::string description = payload.value("description", "");
    const bool never = description.find("[demo:never-passes]") != std::string::npos;
    const bool once = description.find("[demo:fails-qa-once]") != std::string::npos;
    const bool broken = never || (once && request.fix_attempt == 0);
    const std::string lang = language_of(request.path);
    std::string summary = description;
    for (auto& c : summary) {
      if (c == '\n' || c == '"' || c == '\\' || c == '`' || c == '$') c = ' ';
    }
    Generation g;
    g.model = model();
    g.content = render(lang, request.path, summary, broken);
    g.prompt_tokens = static_cast<std::int64_t>((request.system_prompt.size() + request.user_prompt.size()) / 4);
    g.completion_tokens = static_cast<std::int64_t>(g.content.size() / 4);
    return g;
  }

 private:
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
