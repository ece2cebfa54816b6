#pragma once
// Generator backends: what turns a task's prompt into file content.
//   openai   — an OpenAI-compatible chat-completions API over HTTPS (OpenAI, Azure OpenAI, vLLM,
//              the llama.cpp server, Ollama), with libcurl
//   exec     — a user's command: the task JSON on stdin, the file on stdout
//   template — an offline, deterministic stand-in for an LLM (the default of `make run`); it
//              writes a small valid file for the path's language, and honours the demo markers
//              "[demo:fails-qa-once]" and "[demo:never-passes]" in the description
// Backends are called from many worker threads at once: generate() must be thread-safe.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentline/net/rate_limit_headers.h"

namespace agentline::devfix {

struct GenerationRequest {
  nlohmann::json task;  // the validated task message
  std::string path;
  std::string system_prompt;
  std::string user_prompt;
  int fix_attempt = 0;
  int max_tokens = 2048;
  bool raw_reply = false;  // the reply as it came (a plan's JSON), not the code extracted from it
  // A JSON Schema the reply should follow (a plan's), as JSON text with its properties in the
  // order they should be written (a grammar-constrained model writes them in that order: paths
  // before dependencies): asked of the server as structured output where the backend is
  // configured for it (OpenAiConfig::structured_output).
  std::string reply_schema;
  // Added to the backend's temperature: a plan asked for again gets a different answer.
  double temperature_boost = 0;
};

struct Generation {
  std::string content;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  double cost_usd = 0;
  std::string model;
  std::string finish_reason;        // "stop", "length" (cut at max_tokens), ... ("" if not told)
  bool usage_estimated = false;     // the reply had no usage: tokens estimated at 4 characters each
  std::string backend;              // the backend that answered (the worker sets it: it may be a fallback)
  net::RateLimitFeedback feedback;  // the provider's x-ratelimit-* headers on this answer, if any
};

// A failed call, classified where it happened.
class GenerationError : public std::runtime_error {
 public:
  enum class Kind {
    kRateLimited,  // 429: back off (the feedback says how long)
    kUnavailable,  // 5xx, timeout, connection refused: counts against the breaker, retried
    kRejected,     // other 4xx, an unusable reply: the task cannot succeed as it is
  };
  GenerationError(Kind kind, const std::string& what, net::RateLimitFeedback feedback = {},
                  std::string error_class = "")
      : std::runtime_error(what), kind_(kind), feedback_(std::move(feedback)), error_class_(std::move(error_class)) {}
  Kind kind() const { return kind_; }
  // For kRejected: the class a FILE_FAILED or PLAN_REJECTED carries (llm_rejected unless said).
  const std::string& error_class() const { return error_class_; }
  const net::RateLimitFeedback& feedback() const { return feedback_; }

 private:
  Kind kind_;
  net::RateLimitFeedback feedback_;
  std::string error_class_;
};

class Generator {
 public:
  virtual ~Generator() = default;
  virtual Generation generate(const GenerationRequest& request) = 0;
  // Several files in one call where the backend can (openai); by default one call each. The
  // result has one Generation per request, in order.
  virtual std::vector<Generation> generate_batch(const std::vector<GenerationRequest>& requests) {
    std::vector<Generation> out;
    for (const auto& r : requests) out.push_back(generate(r));
    return out;
  }
  virtual std::string backend() const = 0;
  virtual std::string model() const = 0;
};

struct Price {
  double prompt_per_1k = 0;
  double completion_per_1k = 0;
};

struct OpenAiConfig {
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;                        // from --llm-api-key-file or AGENTLINE_LLM_API_KEY
  std::string auth_header = "Authorization";  // Azure OpenAI: "api-key"
  std::string model = "gpt-4o-mini";
  double temperature = 0.2;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{120000};
  std::map<std::string, Price> prices;  // per model
  // How a request with a reply schema asks for JSON (--llm-structured-output):
  //   json_object         {"type": "json_object"}: OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM
  //   json_schema         {"type": "json_schema", "json_schema": {...}}: OpenAI structured outputs, vLLM
  //   json_object_schema  {"type": "json_object", "schema": {...}}: llama.cpp's server (a grammar)
  //   none                plain text; the plan is read out of prose and fences
  std::string structured_output = "json_object";
};

std::unique_ptr<Generator> make_openai_generator(OpenAiConfig config);
std::unique_ptr<Generator> make_exec_generator(std::vector<std::string> argv, std::chrono::milliseconds timeout);
std::unique_ptr<Generator> make_template_generator();

// The code in an LLM reply: the longest fenced block (```lang ... ```; a model often adds a
// short usage example after the file), an unterminated block to the end, else the whole reply
// without surrounding blank lines.
std::string extract_code(const std::string& reply);
// An OpenAI chat-completions reply body (status 2xx) as a Generation, hardened against what
// real servers return: an error object in a 200 (kUnavailable), no choices or no message
// content (kUnavailable), empty content (kRejected), no usage (tokens estimated, marked). The
// content is extract_code()'s, or the text as it came when `raw_reply`. finish_reason is kept:
// the caller decides what a reply cut at max_tokens means.
Generation parse_chat_completion(const std::string& body, const std::string& prompt_text, bool raw_reply,
                                 const std::string& default_model);
// Per path, the fenced block that follows a "File: <path>" line in a batched reply; missing
// paths are absent from the result.
std::map<std::string, std::string> split_batch_reply(const std::string& reply, const std::vector<std::string>& paths);
// Prices from JSON {"model": {"prompt_per_1k": 0.15, "completion_per_1k": 0.6}}.
std::map<std::string, Price> parse_prices(const std::string& json_text);

}  // namespace agentline::devfix
