// A minimal Docker Engine API on a unix socket for serve's runtime tests
// (service_containers_test.cpp, and the PostgreSQL integration test in
// tests/integration/): one running container "web" whose drift is the files
// given. Shared so both test binaries drive serve's runtime the same way.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "fake_engine.h"  // src/runtime/tests: the ustar writer

namespace hashsieve::service::testing {

inline std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(in[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

inline std::string percent_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// A minimal Docker Engine API on a unix socket: one running container whose
// drift is the files given (added regular files: /changes, HEAD and GET
// /archive); every other request (the event stream included) is a 500. One
// request per connection (Connection: close).
class FakeEngine {
 public:
  using Files = std::map<std::string, std::string>;  // absolute path -> content
  explicit FakeEngine(std::string path, Files drift = {}) : path_(std::move(path)), drift_(std::move(drift)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 16) == 0;
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  bool ok() const { return ok_; }
  static constexpr const char* kId = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

 private:
  std::string answer(const std::string& method, const std::string& target) const {
    static const std::regex kVersioned(R"(^/v[0-9.]+(/.*)$)");
    std::smatch m;
    const std::string path = std::regex_match(target, m, kVersioned) ? m[1].str() : target;
    const std::string id = kId;
    const std::string archive = "/containers/" + id + "/archive?path=";
    if (path.starts_with(archive)) {
      const auto file = drift_.find(percent_decode(path.substr(archive.size())));
      if (file == drift_.end()) return reply(404, R"({"message":"no such file"})");
      const std::string name = file->first.substr(file->first.rfind('/') + 1);
      if (method == "HEAD") {
        const nlohmann::json stat = {{"name", name},
                                     {"size", file->second.size()},
                                     {"mode", 0644},
                                     {"mtime", "2026-11-23T00:00:00Z"},
                                     {"linkTarget", ""}};
        return reply(200, "", "X-Docker-Container-Path-Stat: " + base64(stat.dump()) + "\r\n");
      }
      const auto tar = runtime::testing::tar_of(name, runtime::testing::Bytes(file->second.begin(), file->second.end()),
                                                0644);
      return reply(200, std::string(tar.begin(), tar.end()), "", "application/x-tar");
    }
    if (path == "/containers/" + id + "/changes") {
      if (drift_.empty()) return reply(200, "null");
      nlohmann::json changes = nlohmann::json::array();
      for (const auto& [p, content] : drift_) changes.push_back({{"Path", p}, {"Kind", 1}});
      return reply(200, changes.dump());
    }
    if (path == "/_ping") return reply(200, "OK");
    if (path.starts_with("/containers/json")) {
      return reply(200, R"([{"Id":")" + id +
                            R"(","Names":["/web"],"Image":"busybox:1","ImageID":"sha256:ff","State":"running"}])");
    }
    if (path == "/containers/" + id + "/json") {
      return reply(200, R"({"Id":")" + id +
                            R"(","Name":"/web","Image":"sha256:ff","Config":{"Image":"busybox:1"},"State":{"Running":true,"Pid":1}})");
    }
    return reply(500, R"({"message":"not in this fake"})");
  }
  static std::string reply(int status, const std::string& body, const std::string& extra_headers = "",
                           const std::string& content_type = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") + "\r\nContent-Type: " +
           content_type + "\r\n" + extra_headers + "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  void serve() {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp1 = request.find(' ');
      const auto sp2 = request.find(' ', sp1 + 1);
      if (sp1 != std::string::npos && sp2 != std::string::npos) {
        const std::string out = answer(request.substr(0, sp1), request.substr(sp1 + 1, sp2 - sp1 - 1));
        std::size_t off = 0;
        while (off < out.size()) {
          const ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += static_cast<std::size_t>(n);
        }
      }
      ::close(c);
    }
  }

  std::string path_;
  Files drift_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace hashsieve::service::testing
