#include "http_stream.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace hashsieve::image {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

bool is_followed_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

Result<std::unique_ptr<HttpStream>> HttpStream::start(const HttpRequest& request) {
  global_init();
  std::unique_ptr<HttpStream> s(new HttpStream());
  s->url_ = request.url;
  s->easy_ = curl_easy_init();
  s->multi_ = curl_multi_init();
  if (s->easy_ == nullptr || s->multi_ == nullptr) return Error(ErrorCode::internal, "libcurl initialisation failed");
  CURL* e = s->easy_;
  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);  // blob GETs may answer 307 to storage
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (request.head) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  // Stalls are timed in drive(), only while the reader waits: curl's
  // low-speed check would also count the time the transfer sits paused
  // because the reader is busy.
  s->stall_timeout_ = std::chrono::seconds(request.stall_timeout_s);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->error_buffer_);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpStream::on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, s.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpStream::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, s.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "hashsieve");
  if (!request.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, request.ca_file.c_str());
  if (!request.basic_user.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, request.basic_user.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, request.basic_password.c_str());
  }
  for (const auto& h : request.headers) s->header_list_ = curl_slist_append(s->header_list_, h.c_str());
  if (s->header_list_ != nullptr) curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->header_list_);
  curl_multi_add_handle(s->multi_, e);
  if (auto st = s->drive([&] { return s->headers_done_; }); !st) return std::move(st).error();
  if (!s->headers_done_) {
    // The transfer ended before any final response.
    if (auto st = s->transfer_status(); !st) return std::move(st).error();
    return Error(ErrorCode::unavailable, "GET " + request.url + ": no response");
  }
  return s;
}

HttpStream::~HttpStream() {
  if (multi_ != nullptr && easy_ != nullptr) curl_multi_remove_handle(multi_, easy_);
  if (easy_ != nullptr) curl_easy_cleanup(easy_);
  if (multi_ != nullptr) curl_multi_cleanup(multi_);
  if (header_list_ != nullptr) curl_slist_free_all(header_list_);
}

std::string HttpStream::header(const std::string& name) const {
  auto it = headers_.find(name);
  return it == headers_.end() ? std::string() : it->second;
}

std::size_t HttpStream::on_write(char* data, std::size_t size, std::size_t count, void* self) {
  auto* s = static_cast<HttpStream*>(self);
  const std::size_t n = size * count;
  if (s->buffer_.size() - s->read_pos_ >= kBufferCap) {
    s->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  s->headers_done_ = true;
  s->buffer_.append(data, n);
  return n;
}

std::size_t HttpStream::on_header(char* data, std::size_t size, std::size_t count, void* self) {
  auto* s = static_cast<HttpStream*>(self);
  const std::size_t n = size * count;
  std::string line(data, n);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or 100 Continue): keep only its headers.
    s->headers_.clear();
    return n;
  }
  line = trim(line);
  if (line.empty()) {
    long status = 0;
    curl_easy_getinfo(s->easy_, CURLINFO_RESPONSE_CODE, &status);
    const bool will_follow = is_followed_redirect(status) && s->headers_.count("location") != 0;
    if (status >= 200 && !will_follow) {
      s->status_ = status;
      s->headers_done_ = true;
    }
    return n;
  }
  const std::size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    s->headers_[name] = trim(line.substr(colon + 1));
  }
  return n;
}

template <typename Ready>
Status HttpStream::drive(Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + stall_timeout_;
  while (!ready() && !done_) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Error(ErrorCode::unavailable, "GET " + url_ + ": no data for " +
                                               std::to_string(stall_timeout_.count()) + " s");
    }
    int running = 0;
    const CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK) return Error(ErrorCode::internal, std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg == CURLMSG_DONE) {
        done_ = true;
        result_ = msg->data.result;
      }
    }
    if (ready() || done_) break;
    const CURLMcode pc = curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    if (pc != CURLM_OK) return Error(ErrorCode::internal, std::string("curl_multi_poll: ") + curl_multi_strerror(pc));
  }
  if (done_ && status_ == 0 && result_ == CURLE_OK) curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
  return {};
}

Status HttpStream::transfer_status() const {
  if (!done_ || result_ == CURLE_OK) return {};
  std::string detail = error_buffer_[0] != '\0' ? std::string(error_buffer_) : curl_easy_strerror(result_);
  switch (result_) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
      // Retrying cannot help: the caller must trust the certificate.
      return Error(ErrorCode::invalid_argument,
                   "GET " + url_ + ": TLS certificate not trusted (" + detail +
                       "); give the registry's CA bundle (ca_file) or use plain HTTP (insecure)");
    default:
      return Error(ErrorCode::unavailable, "GET " + url_ + ": " + detail);
  }
}

Result<std::size_t> HttpStream::read(std::span<std::uint8_t> out) {
  if (out.empty()) return std::size_t{0};
  if (read_pos_ == buffer_.size()) {
    buffer_.clear();
    read_pos_ = 0;
    if (paused_) {
      paused_ = false;
      // May call on_write at once with the data curl held back.
      curl_easy_pause(easy_, CURLPAUSE_CONT);
    }
    if (auto st = drive([&] { return read_pos_ < buffer_.size(); }); !st) return std::move(st).error();
    if (read_pos_ == buffer_.size()) {
      if (auto st = transfer_status(); !st) return std::move(st).error();
      return std::size_t{0};
    }
  }
  const std::size_t n = std::min(out.size(), buffer_.size() - read_pos_);
  std::memcpy(out.data(), buffer_.data() + read_pos_, n);
  read_pos_ += n;
  return n;
}

Result<std::string> HttpStream::read_all(std::size_t limit) {
  std::string body;
  std::vector<std::uint8_t> chunk(64 << 10);
  while (true) {
    auto n = read(chunk);
    if (!n) return std::move(n).error();
    if (*n == 0) return body;
    if (body.size() + *n > limit) {
      return Error(ErrorCode::limit_exceeded,
                   "GET " + url_ + ": response larger than the " + std::to_string(limit) + "-byte limit");
    }
    body.append(reinterpret_cast<const char*>(chunk.data()), *n);
  }
}

}  // namespace hashsieve::image
