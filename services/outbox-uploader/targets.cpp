#include "targets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "agentline/cache/result_cache.h"
#include "agentline/events/path_policy.h"
#include "agentline/net/http_client.h"

namespace agentline::outbox {
namespace fs = std::filesystem;
namespace {

using Kind = UploadOutcome::Kind;

// Classifies an HTTP answer that was not a success.
UploadOutcome http_failure(const net::HttpResponse& r, const std::string& what) {
  if (r.status == 0) {
    return UploadOutcome::failed(Kind::kRetry, r.timed_out ? "timeout" : "connection", what + ": " + r.error);
  }
  const std::string detail = what + ": HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300);
  const std::string error_class = "http_" + std::to_string(r.status);
  // 409: the receiver is still working on a request with this idempotency key.
  if (net::is_retryable(r) || r.status == 409)
    return UploadOutcome::failed(Kind::kRetry, error_class, detail, net::retry_after(r));
  return UploadOutcome::failed(Kind::kPermanent, error_class, detail);
}

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// Whether the regular file `name` in `dir` holds exactly `content` (not following a symlink).
bool holds(int dir, const std::string& name, const std::string& content) {
  const Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return false;
  std::string have;
  have.reserve(content.size() + 1);
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 && have == content;
    have.append(buf, static_cast<std::size_t>(n));
    if (have.size() > content.size()) return false;
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Writes under the output root one folder at a time from a descriptor of the root, opening each
// folder with O_NOFOLLOW: a symlink anywhere on the way (planted before the write or during it)
// is refused, and no path is resolved twice, so nothing checked can change before it is used.
class FilesystemTarget final : public Target {
 public:
  explicit FilesystemTarget(std::string root) : root_(std::move(root)) {
    fs::create_directories(root_);
    canonical_root_ = fs::canonical(root_);
    root_fd_ = Fd(::open(canonical_root_.c_str(), kDirFlags));
    if (!root_fd_) throw std::runtime_error("cannot open the output root " + root_ + ": " + std::strerror(errno));
  }
  std::string name() const override { return "filesystem"; }

  UploadOutcome upload(const OutboxItem& item) override {
    std::string relative;
    std::string content;
    if (item.kind == "file") {
      if (auto why = events::unsafe_path_reason(item.path))
        return UploadOutcome::failed(Kind::kPermanent, "unsafe_path", *why);
      relative = item.job_id + "/" + item.path;
      content = item.content;
    } else {
      relative = item.job_id + "/.agentline/items/" + item.item_id + ".json";
      nlohmann::json doc = {
          {"item_id", item.item_id}, {"kind", item.kind}, {"title", item.title}, {"job_id", item.job_id}};
      if (item.parent_id) doc["parent_id"] = *item.parent_id;
      if (item.parent_remote_id) doc["parent"] = *item.parent_remote_id;
      content = doc.dump(2) + "\n";
    }
    if (auto why = events::unsafe_path_reason(item.job_id))
      return UploadOutcome::failed(Kind::kPermanent, "unsafe_path", "job id: " + *why);
    const std::string shown = (canonical_root_ / relative).string();

    // The folders, made where missing.
    std::vector<std::string> parts;
    for (std::size_t from = 0;;) {
      const auto slash = relative.find('/', from);
      parts.push_back(relative.substr(from, slash - from));
      if (parts.back().empty() || parts.back() == "." || parts.back() == "..")
        return UploadOutcome::failed(Kind::kPermanent, "unsafe_path", relative + " has an empty, . or .. segment");
      if (slash == std::string::npos) break;
      from = slash + 1;
    }
    const std::string name = parts.back();
    parts.pop_back();
    Fd dir;
    for (const auto& part : parts) {
      const int at = dir ? dir.get() : root_fd_.get();
      Fd next(::openat(at, part.c_str(), kDirFlags));
      if (!next && errno == ENOENT) {
        if (::mkdirat(at, part.c_str(), 0755) != 0 && errno != EEXIST)
          return UploadOutcome::failed(Kind::kRetry, "io_error",
                                       "cannot create a folder for " + shown + ": " + std::strerror(errno));
        next = Fd(::openat(at, part.c_str(), kDirFlags));
      }
      if (!next && (errno == ELOOP || errno == ENOTDIR))
        return UploadOutcome::failed(Kind::kPermanent, "unsafe_path",
                                     item.path + ": " + part + " on the way is a symlink or not a folder");
      if (!next)
        return UploadOutcome::failed(Kind::kRetry, "io_error",
                                     "cannot open a folder of " + shown + ": " + std::strerror(errno));
      dir = std::move(next);
    }

    struct stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode))
        return UploadOutcome::failed(Kind::kPermanent, "unsafe_path", item.path + " is a symlink");
      if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) == content.size() &&
          holds(dir.get(), name, content))
        return UploadOutcome::uploaded(relative, shown, true);
    }

    const std::string tmp = "." + name + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    const auto fail = [&](const std::string& what) {
      const std::string why = std::strerror(errno);
      ::unlinkat(dir.get(), tmp.c_str(), 0);
      return UploadOutcome::failed(Kind::kRetry, "io_error", what + " " + shown + ": " + why);
    };
    {
      const Fd out(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!out) return fail("cannot create a temporary file beside");
      if (!write_all(out.get(), content)) return fail("cannot write");
      if (::fsync(out.get()) != 0) return fail("fsync failed for");
    }
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) return fail("rename failed for");
    ::fsync(dir.get());
    return UploadOutcome::uploaded(relative, shown);
  }

 private:
  std::string root_;
  fs::path canonical_root_;
  Fd root_fd_;
  std::atomic<std::uint64_t> counter_{0};
};

nlohmann::json item_json(const OutboxItem& item) {
  nlohmann::json j = {{"staging_key", item.staging_key},
                      {"job_id", item.job_id},
                      {"task_id", item.task_id},
                      {"item_id", item.item_id},
                      {"kind", item.kind}};
  if (!item.path.empty()) j["path"] = item.path;
  if (!item.title.empty()) j["title"] = item.title;
  if (item.kind == "file") {
    j["content"] = item.content;
    j["content_sha256"] = item.content_sha256;
  }
  if (item.parent_id) j["parent_id"] = *item.parent_id;
  if (item.parent_remote_id) j["parent_remote_id"] = *item.parent_remote_id;
  return j;
}

class WebhookTarget final : public Target {
 public:
  explicit WebhookTarget(const TargetConfig& c) : config_(c) {}
  std::string name() const override { return "webhook"; }

  UploadOutcome upload(const OutboxItem& item) override {
    net::HttpRequest req;
    req.url = config_.webhook_url;
    req.timeout = config_.timeout;
    req.body = item_json(item).dump();
    req.headers = {{"Content-Type", "application/json"}, {"Idempotency-Key", item.staging_key}};
    if (!config_.webhook_token.empty()) req.headers.emplace_back("Authorization", "Bearer " + config_.webhook_token);
    const auto r = net::http_call(req);
    if (!r.ok()) return http_failure(r, "webhook");
    std::string id = item.staging_key;
    std::string url;
    bool repeat = r.header("idempotent-replayed").value_or("") == "true";
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_object()) {
      if (body.contains("id") && (body["id"].is_string() || body["id"].is_number())) {
        id = body["id"].is_string() ? body["id"].get<std::string>() : body["id"].dump();
      }
      url = body.value("url", "");
      repeat = repeat || body.value("duplicate", false);
    }
    return UploadOutcome::uploaded(id, url, repeat);
  }

 private:
  TargetConfig config_;
};

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

class AzureDevOpsTarget final : public Target {
 public:
  explicit AzureDevOpsTarget(const TargetConfig& c) : config_(c) {
    while (!config_.ado_org_url.empty() && config_.ado_org_url.back() == '/') config_.ado_org_url.pop_back();
    auth_ = "Basic " + base64(":" + config_.ado_pat);
  }
  std::string name() const override { return "azure-devops"; }

  UploadOutcome upload(const OutboxItem& item) override {
    const std::string tag = ado_tag(item.staging_key);
    // Existence check first: a crash, a redelivery to another replica, or a timeout after the
    // create went through all leave a work item carrying this tag.
    net::HttpRequest query = request("POST", project_url() + "/_apis/wit/wiql?api-version=" + config_.ado_api_version);
    query.body = nlohmann::json{
        {"query",
         "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
         "[System.Tags] CONTAINS '" +
             tag +
             "'"}}.dump();
    const auto found = net::http_call(query);
    if (!found.ok()) return http_failure(found, "azure-devops wiql");
    auto hits = nlohmann::json::parse(found.body, nullptr, false);
    if (hits.is_object() && hits.contains("workItems") && hits["workItems"].is_array() && !hits["workItems"].empty()) {
      const auto& w = hits["workItems"][0];
      return UploadOutcome::uploaded(w.contains("id") ? w["id"].dump() : "", w.value("url", ""), true);
    }
    nlohmann::json patch = nlohmann::json::array();
    auto add = [&](const std::string& path, nlohmann::json value) {
      patch.push_back({{"op", "add"}, {"path", path}, {"value", std::move(value)}});
    };
    const bool file = item.kind == "file";
    add("/fields/System.Title", (file ? item.path : item.title).substr(0, 255));
    std::string description = file ? "<p>Generated by Agentline for job " + html_escape(item.job_id) + ".</p><pre>" +
                                         html_escape(item.content) + "</pre>"
                                   : html_escape(item.title);
    add("/fields/System.Description", description);
    add("/fields/System.Tags", "agentline; " + tag);
    if (item.parent_remote_id) {
      add("/relations/-", {{"rel", "System.LinkTypes.Hierarchy-Reverse"},
                           {"url", config_.ado_org_url + "/_apis/wit/workItems/" + *item.parent_remote_id}});
    }
    net::HttpRequest create = request("POST", project_url() + "/_apis/wit/workitems/$" + url_type(type_of(item)) +
                                                  "?api-version=" + config_.ado_api_version);
    create.headers[0].second = "application/json-patch+json";
    create.body = patch.dump();
    const auto r = net::http_call(create);
    if (!r.ok()) return http_failure(r, "azure-devops create");
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("id")) {
      return UploadOutcome::failed(Kind::kRetry, "bad_response", "azure-devops create answered without an id");
    }
    std::string url = body.value("url", "");
    if (body.contains("_links") && body["_links"].contains("html")) url = body["_links"]["html"].value("href", url);
    return UploadOutcome::uploaded(body["id"].dump(), url);
  }

 private:
  std::string project_url() const { return config_.ado_org_url + "/" + config_.ado_project; }
  net::HttpRequest request(const std::string& method, const std::string& url) const {
    net::HttpRequest r;
    r.method = method;
    r.url = url;
    r.timeout = config_.timeout;
    r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
    return r;
  }
  std::string type_of(const OutboxItem& item) const {
    if (item.kind == "epic") return "Epic";
    if (item.kind == "feature" || item.kind == "group") return "Feature";
    if (item.kind == "story") return "User Story";
    if (item.kind == "task") return "Task";
    return config_.ado_file_type;
  }
  static std::string url_type(const std::string& type) {
    std::string out;
    for (char c : type) out += c == ' ' ? std::string("%20") : std::string(1, c);
    return out;
  }
  TargetConfig config_;
  std::string auth_;
};

}  // namespace

std::string ado_tag(const std::string& staging_key) {
  return "agentline-" + cache::sha256_hex(staging_key).substr(0, 24);
}

std::unique_ptr<Target> make_target(const TargetConfig& c) {
  if (c.kind == "filesystem") {
    if (c.output_root.empty()) throw std::invalid_argument("the filesystem target needs --output-root");
    return std::make_unique<FilesystemTarget>(c.output_root);
  }
  if (c.kind == "webhook") {
    if (c.webhook_url.empty()) throw std::invalid_argument("the webhook target needs --webhook-url");
    return std::make_unique<WebhookTarget>(c);
  }
  if (c.kind == "azure-devops") {
    if (c.ado_org_url.empty() || c.ado_project.empty()) {
      throw std::invalid_argument("the azure-devops target needs --ado-org-url and --ado-project");
    }
    if (c.ado_pat.empty())
      throw std::invalid_argument("the azure-devops target needs a PAT (--ado-pat-file or AGENTLINE_ADO_PAT)");
    return std::make_unique<AzureDevOpsTarget>(c);
  }
  throw std::invalid_argument("unknown target '" + c.kind + "' (filesystem, webhook, azure-devops)");
}

}  // namespace agentline::outbox
