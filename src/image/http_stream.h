// One HTTP GET over libcurl whose body is pulled, not pushed: a ByteSource.
//
// libcurl's multi interface runs in the caller's thread inside read(): the
// write callback appends to a buffer and, once the buffer holds kBufferCap
// bytes, returns CURL_WRITEFUNC_PAUSE so the socket stays unread (TCP flow
// control then throttles the server) until the consumer has drained it. No
// thread, no temp file, memory bounded by the cap (ADR 0006).
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/layer_entries.h"

namespace hashsieve::image {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string ca_file;               // extra CA bundle, "" for the system store
  std::string basic_user;            // with basic_password: CURLOPT_USERPWD (token endpoints)
  std::string basic_password;
  long connect_timeout_ms = 30'000;
  long stall_timeout_s = 120;        // a read that waits this long for any byte fails
  bool head = false;                 // HEAD instead of GET (a manifest digest without the body)
};

class HttpStream final : public ByteSource {
 public:
  static constexpr std::size_t kBufferCap = 1 << 20;

  // Sends the request and runs the transfer until the final response's
  // headers are in (redirects are followed). A transport failure (refused,
  // reset, TLS, timeout) is ErrorCode::unavailable with curl's message.
  static Result<std::unique_ptr<HttpStream>> start(const HttpRequest& request);
  ~HttpStream() override;
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  long status() const { return status_; }
  // Final response header by lowercase name, "" when absent.
  std::string header(const std::string& lowercase_name) const;
  const std::string& url() const { return url_; }

  Result<std::size_t> read(std::span<std::uint8_t> out) override;
  // The rest of the body; limit_exceeded beyond `limit` bytes.
  Result<std::string> read_all(std::size_t limit);

 private:
  HttpStream() = default;
  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* self);
  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self);
  // Runs the transfer until `ready()` or the transfer ends.
  template <typename Ready>
  Status drive(Ready ready);
  Status transfer_status() const;

  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  curl_slist* header_list_ = nullptr;
  std::string url_;
  std::string buffer_;
  std::size_t read_pos_ = 0;
  bool paused_ = false;
  bool headers_done_ = false;
  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  std::chrono::seconds stall_timeout_{120};
  long status_ = 0;
  std::map<std::string, std::string> headers_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

}  // namespace hashsieve::image
