// Docker Engine API client over a unix socket with libcurl. Every request is
// one easy handle (requests are few and the socket is local); replies are
// read into memory, bounded, except /export, which is pulled through a multi
// handle (ExportStream) so a whole container filesystem never sits in memory.
#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "hashsieve/runtime/engine.h"

namespace hashsieve::runtime {
namespace {

constexpr std::uint64_t kMaxJsonReply = std::uint64_t{64} << 20;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using Curl = std::unique_ptr<CURL, CurlDeleter>;

struct Reply {
  long status = 0;
  std::vector<std::uint8_t> body;
  std::string path_stat;  // X-Docker-Container-Path-Stat
};

struct Transfer {
  Reply* reply = nullptr;
  std::uint64_t max_bytes = 0;
  bool over_limit = false;
  // Streaming mode (events): each complete line goes here instead of body.
  std::function<void(std::string_view)> on_line;
  std::string pending;
  const std::atomic<bool>* stop = nullptr;
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->on_line) {
    t->pending.append(data, bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = t->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      t->on_line(std::string_view(t->pending).substr(start, nl - start));
    }
    t->pending.erase(0, start);
    if (t->pending.size() > kMaxJsonReply) {
      t->over_limit = true;
      return 0;
    }
    return bytes;
  }
  if (t->reply->body.size() + bytes > t->max_bytes) {
    t->over_limit = true;
    return 0;  // aborts the transfer
  }
  t->reply->body.insert(t->reply->body.end(), data, data + bytes);
  return bytes;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "x-docker-container-path-stat:";
  if (line.size() > kName.size() && strncasecmp(line.data(), kName.data(), kName.size()) == 0) {
    std::string_view v = line.substr(kName.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
    t->reply->path_stat = std::string(v);
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return (t->stop != nullptr && t->stop->load()) ? 1 : 0;
}

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

// The engine's {"message": "..."} error body, if any.
std::string engine_message(const std::vector<std::uint8_t>& body) {
  std::string text(body.begin(), body.end());
  const auto key = text.find("\"message\":\"");
  if (key == std::string::npos) return text.substr(0, 200);
  const auto start = key + 11;
  const auto end = text.find('"', start);
  return text.substr(start, end == std::string::npos ? 200 : std::min<std::size_t>(end - start, 200));
}

// GET /export as a ByteSource: read() drives a curl multi handle until the
// write callback has delivered bytes. The callback pauses the transfer when
// more than kMaxBuffered bytes wait, so memory stays bounded whatever the
// engine sends; read() resumes it once the buffer is drained.
class ExportStream final : public image::ByteSource {
 public:
  static constexpr std::size_t kMaxBuffered = std::size_t{4} << 20;

  ExportStream(std::string what, std::string socket) : what_(std::move(what)), socket_(std::move(socket)) {}
  ~ExportStream() override {
    if (multi_ != nullptr) {
      if (easy_ != nullptr) curl_multi_remove_handle(multi_, easy_);
      curl_multi_cleanup(multi_);
    }
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
  }
  ExportStream(const ExportStream&) = delete;
  ExportStream& operator=(const ExportStream&) = delete;

  Status start(const std::string& url, const DockerEngineOptions& options) {
    easy_ = curl_easy_init();
    multi_ = curl_multi_init();
    if (easy_ == nullptr || multi_ == nullptr) return Error(ErrorCode::internal, "curl init failed");
    curl_easy_setopt(easy_, CURLOPT_UNIX_SOCKET_PATH, socket_.c_str());
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    // No overall timeout (a large filesystem takes as long as it takes), but
    // a stalled engine is given up.
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(options.stall_timeout.count() / 1000)));
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &ExportStream::on_data);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_multi_add_handle(multi_, easy_);
    // Until the first bytes (or the end): then the status is known.
    if (auto st = pump(); !st.ok()) return st;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
    return {};
  }

  long status() const { return status_; }
  // The whole (error) reply, bounded: for a status that is not 2xx.
  std::vector<std::uint8_t> rest(std::size_t max_bytes) {
    std::vector<std::uint8_t> out;
    std::array<std::uint8_t, 16 * 1024> chunk{};
    while (out.size() < max_bytes) {
      auto n = read(chunk);
      if (!n.ok() || *n == 0) break;
      out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    return out;
  }

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    if (offset_ == buffer_.size()) {
      buffer_.clear();
      offset_ = 0;
      if (paused_) {
        paused_ = false;
        curl_easy_pause(easy_, CURLPAUSE_CONT);
      }
      if (auto st = pump(); !st.ok()) return std::move(st).error();
    }
    const std::size_t n = std::min(out.size(), buffer_.size() - offset_);
    std::memcpy(out.data(), buffer_.data() + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  static size_t on_data(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<ExportStream*>(user);
    const size_t bytes = size * n;
    if (self->buffer_.size() - self->offset_ >= kMaxBuffered) {
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // delivered again after CURLPAUSE_CONT
    }
    self->buffer_.insert(self->buffer_.end(), data, data + bytes);
    return bytes;
  }

  // Runs the transfer until bytes are buffered or it ended (an error unless it completed).
  Status pump() {
    while (!done_ && offset_ == buffer_.size() && !paused_) {
      int running = 0;
      if (curl_multi_perform(multi_, &running) != CURLM_OK) {
        return Error(ErrorCode::unavailable, what_ + ": curl_multi_perform failed");
      }
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg == CURLMSG_DONE) {
          done_ = true;
          result_ = m->data.result;
        }
      }
      if (!done_ && offset_ == buffer_.size()) curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    if (done_ && result_ != CURLE_OK && offset_ == buffer_.size()) {
      // Refused, reset, cut off or stalled: the engine is (maybe only for now) not there.
      return Error(ErrorCode::unavailable,
                   "engine at " + socket_ + ": " + what_ + ": " + curl_easy_strerror(result_));
    }
    return {};
  }

  std::string what_;
  std::string socket_;
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  std::vector<std::uint8_t> buffer_;
  std::size_t offset_ = 0;
  bool paused_ = false;
  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  long status_ = 0;
};

class DockerEngine final : public Engine {
 public:
  DockerEngine(std::string socket, DockerEngineOptions options)
      : socket_(std::move(socket)), options_(std::move(options)) {}

  Status ping() {
    auto r = request("GET", "/_ping", kMaxJsonReply, nullptr, nullptr);
    if (!r.ok()) return std::move(r).error();
    if (r->status != 200) return Error(ErrorCode::unavailable, "engine at " + socket_ + ": _ping answered " + std::to_string(r->status));
    return {};
  }

  Result<std::vector<ContainerSummary>> list_containers() override {
    auto r = json_request("/containers/json", "listing containers");
    if (!r.ok()) return std::move(r).error();
    return parse_container_list(*r);
  }

  Result<ContainerInspect> inspect(const std::string& id) override {
    auto r = json_request("/containers/" + escape(id) + "/json", "inspecting container " + id);
    if (!r.ok()) return std::move(r).error();
    return parse_container_inspect(*r);
  }

  Result<std::vector<Change>> changes(const std::string& id) override {
    auto r = json_request("/containers/" + escape(id) + "/changes", "changes of container " + id);
    if (!r.ok()) return std::move(r).error();
    return parse_changes(*r);
  }

  Result<PathStat> stat_path(const std::string& id, const std::string& path) override {
    const std::string what = "stat of " + path + " in container " + id;
    auto r = request("HEAD", "/containers/" + escape(id) + "/archive?path=" + escape(path), kMaxJsonReply, nullptr,
                     nullptr);
    if (!r.ok()) return std::move(r).error().with_context(what);
    if (auto st = check_status(*r, what); !st.ok()) return std::move(st).error();
    if (r->path_stat.empty()) return Error(ErrorCode::parse_error, what + ": no X-Docker-Container-Path-Stat header");
    auto s = parse_path_stat(r->path_stat);
    if (!s.ok()) return std::move(s).error().with_context(what);
    return s;
  }

  Result<std::vector<std::uint8_t>> archive(const std::string& id, const std::string& path,
                                            std::uint64_t max_bytes) override {
    const std::string what = "archive of " + path + " in container " + id;
    auto r = request("GET", "/containers/" + escape(id) + "/archive?path=" + escape(path), max_bytes, nullptr, nullptr);
    if (!r.ok()) return std::move(r).error().with_context(what);
    if (auto st = check_status(*r, what); !st.ok()) return std::move(st).error();
    return std::move(r->body);
  }

  Result<std::unique_ptr<image::ByteSource>> export_container(const std::string& id) override {
    global_init();
    const std::string what = "export of container " + id;
    auto stream = std::make_unique<ExportStream>("GET /containers/" + id + "/export", socket_);
    const std::string url = "http://docker/" + options_.api_version + "/containers/" + escape(id) + "/export";
    if (auto st = stream->start(url, options_); !st.ok()) return std::move(st).error().with_context(what);
    Reply reply;
    reply.status = stream->status();
    if (reply.status < 200 || reply.status >= 300) {
      reply.body = stream->rest(64 * 1024);
      if (auto st = check_status(reply, what); !st.ok()) return std::move(st).error();
    }
    return std::unique_ptr<image::ByteSource>(std::move(stream));
  }

  Status watch_events(const std::function<void(const EngineEvent&)>& on_event,
                      const std::atomic<bool>& stop) override {
    // Docker reports an exec as exec_start, Podman's service as exec.
    const std::string filters = R"({"type":["container"],"event":["start","exec_start","exec"]})";
    std::function<void(std::string_view)> on_line = [&](std::string_view line) {
      if (line.empty()) return;
      auto e = parse_event(line);
      // A line we cannot read is dropped: the next sweep covers it.
      if (e.ok()) on_event(*e);
    };
    auto r = request("GET", "/events?filters=" + escape(filters), kMaxJsonReply, &on_line, &stop);
    if (stop.load()) return {};
    if (!r.ok()) return std::move(r).error().with_context("event stream");
    if (r->status != 200) return Error(ErrorCode::unavailable, "event stream: HTTP " + std::to_string(r->status));
    return Error(ErrorCode::unavailable, "event stream ended");
  }

 private:
  Result<std::string> json_request(const std::string& path, const std::string& what) {
    auto r = request("GET", path, kMaxJsonReply, nullptr, nullptr);
    if (!r.ok()) return std::move(r).error().with_context(what);
    if (auto st = check_status(*r, what); !st.ok()) return std::move(st).error();
    return std::string(r->body.begin(), r->body.end());
  }

  static Status check_status(const Reply& r, const std::string& what) {
    if (r.status >= 200 && r.status < 300) return {};
    const std::string text = what + ": HTTP " + std::to_string(r.status) + ": " + engine_message(r.body);
    if (r.status == 404) return Error(ErrorCode::not_found, text);
    if (r.status == 409) return Error(ErrorCode::invalid_argument, text);  // e.g. container paused or not running
    return Error(ErrorCode::unavailable, text);
  }

  Result<Reply> request(const char* method, const std::string& path, std::uint64_t max_bytes,
                        std::function<void(std::string_view)>* on_line, const std::atomic<bool>* stop) {
    global_init();
    Curl c(curl_easy_init());
    if (!c) return Error(ErrorCode::internal, "curl_easy_init failed");
    Reply reply;
    Transfer t;
    t.reply = &reply;
    t.max_bytes = max_bytes;
    if (on_line != nullptr) t.on_line = *on_line;
    t.stop = stop;
    // The host part is ignored on a unix socket; "docker" is what the CLI sends.
    const std::string url = "http://docker/" + options_.api_version + path;
    CURL* e = c.get();
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, socket_.c_str());
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    if (on_line == nullptr) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    if (std::strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    if (stop != nullptr) {
      curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &on_progress);
      curl_easy_setopt(e, CURLOPT_XFERINFODATA, &t);
    }
    const CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &reply.status);
    if (t.over_limit) {
      return Error(ErrorCode::limit_exceeded, std::string(method) + " " + path + ": reply larger than " +
                                                  std::to_string(max_bytes) + " bytes");
    }
    if (rc != CURLE_OK) {
      // Refused, reset or timed out: the engine is (maybe only for now) not there.
      return Error(ErrorCode::unavailable,
                   "engine at " + socket_ + ": " + method + " " + path + ": " + curl_easy_strerror(rc));
    }
    return reply;
  }

  std::string socket_;
  DockerEngineOptions options_;
};

}  // namespace

Result<std::unique_ptr<Engine>> connect_docker_engine(const DockerEngineOptions& options) {
  constexpr std::string_view kScheme = "unix://";
  if (options.host.rfind(kScheme, 0) != 0 || options.host.size() == kScheme.size()) {
    return Error(ErrorCode::invalid_argument, "docker host '" + options.host + "': only unix://PATH is supported");
  }
  const std::string socket = options.host.substr(kScheme.size());
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    const int err = errno;
    const ErrorCode code = err == ENOENT ? ErrorCode::not_found
                           : err == EACCES ? ErrorCode::permission_denied
                                           : ErrorCode::io_error;
    return Error(code, "docker socket " + socket + ": " + std::strerror(err));
  }
  if (!S_ISSOCK(st.st_mode)) return Error(ErrorCode::invalid_argument, "docker socket " + socket + ": not a socket");
  if (::access(socket.c_str(), R_OK | W_OK) != 0) {
    const int err = errno;
    return Error(err == EACCES ? ErrorCode::permission_denied : ErrorCode::io_error,
                 "docker socket " + socket + ": " + std::strerror(err) +
                     (err == EACCES ? " (run as root or a member of the socket's group)" : ""));
  }
  auto engine = std::make_unique<DockerEngine>(socket, options);
  if (auto ping = engine->ping(); !ping.ok()) return std::move(ping).error();
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace hashsieve::runtime
