// Helpers for the scanner tests: a scratch directory, the EICAR test file
// (assembled at run time so no source file carries it whole), ClamAV
// database lines for it, and a clamd-like unix socket server.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

#include "hashsieve/digest/crypto.h"

namespace hashsieve::scanners::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-scanners-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, std::string_view bytes) const {
    const std::string p = file(name);
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::filesystem::path path_;
};

// The 68-byte EICAR anti-virus test file.
inline std::string eicar() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}$") + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

inline std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string md5_hex(std::string_view s) {
  digest::MultiHasher h({digest::CryptoAlgorithm::md5});
  h.update(bytes_of(s));
  return h.finish().md5->hex();
}

inline std::string hex_of(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// An .hdb line (md5:size:name), the format `sigtool --md5` prints.
inline std::string hdb_line(std::string_view content, const std::string& name) {
  return md5_hex(content) + ":" + std::to_string(content.size()) + ":" + name + "\n";
}

// An .ndb body signature: `body` anywhere in any file type.
inline std::string ndb_line(std::string_view body, const std::string& name) {
  return name + ":0:*:" + hex_of(body) + "\n";
}

// libclamav marks names from unsigned (non-official) databases.
inline std::string unofficial(const std::string& name) { return name + ".UNOFFICIAL"; }

// A listening unix socket at `path` (nothing accepts until the test does).
inline int listen_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0) {
    ADD_FAILURE() << "cannot listen on " << path;
  }
  return fd;
}

}  // namespace hashsieve::scanners::testing
