#include "agentline/net/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "agentline/net/rate_limit_headers.h"

namespace agentline::net {
namespace {

constexpr std::size_t kMaxBody = 4 * 1024 * 1024;  // a reply larger than this is cut

std::size_t write_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const std::size_t bytes = size * n;
  if (body->size() < kMaxBody) body->append(data, std::min(bytes, kMaxBody - body->size()));
  return bytes;
}

struct Stream {
  const HttpRequest* request;
  HttpResponse* response;
};

std::size_t write_stream(char* data, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<Stream*>(user);
  if (s->request->on_body(std::string_view(data, size * n))) return size * n;
  s->response->stopped = true;
  return 0;  // ends the transfer
}

std::size_t write_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const std::size_t bytes = size * n;
  std::string line(data, bytes);
  const auto colon = line.find(':');
  if (colon == std::string::npos) return bytes;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = line.substr(colon + 1);
  const auto first = value.find_first_not_of(" \t");
  const auto last = value.find_last_not_of(" \t\r\n");
  (*headers)[name] = first == std::string::npos ? "" : value.substr(first, last - first + 1);
  return bytes;
}

}  // namespace

std::optional<std::string> HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

HttpResponse http_call(const HttpRequest& request) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResponse response;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    response.error = "curl_easy_init failed";
    return response;
  }
  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers) list = curl_slist_append(list, (name + ": " + value).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(list, curl_slist_free_all);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method != "GET" && request.method != "HEAD") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  }
  Stream stream{&request, &response};
  if (request.on_body) {
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_stream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &stream);
  } else {
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc == CURLE_WRITE_ERROR && response.stopped) return response;
  if (rc != CURLE_OK) {
    response.error = curl_easy_strerror(rc);
    response.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    response.status = 0;
    return response;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string url_escape(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool is_retryable(const HttpResponse& r) {
  return r.status == 0 || r.status == 408 || r.status == 425 || r.status == 429 || r.status >= 500;
}

std::optional<std::chrono::milliseconds> retry_after(const HttpResponse& r) {
  if (auto ms = r.header("retry-after-ms")) {
    try {
      return std::chrono::milliseconds(std::stoll(*ms));
    } catch (...) {
    }
  }
  if (auto v = r.header("retry-after")) {
    if (auto d = parse_retry_after(*v)) return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  return std::nullopt;
}

}  // namespace agentline::net
