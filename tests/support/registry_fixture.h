// A real registry for integration tests: Debian's `docker-registry` (the
// distribution 2.8 registry) on a free loopback port, with its own config,
// storage directory and optional htpasswd or token authentication, plus
// `skopeo copy` to push OCI layouts into it. Header-only and free of
// hashsieve dependencies so any test target can reuse it (the image tests,
// the webhook service tests).
//
// Typical use:
//   RegistryFixture registry;
//   if (auto why = registry.start(); !why.empty()) GTEST_SKIP() << why;
//   registry.push(layout_dir, "v1", "team/app:1.0");
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "subprocess.h"

namespace hashsieve::testsupport {

// A port that was free when asked (bound to port 0, then released).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The status code of GET `path` on 127.0.0.1:`port`, or -1 when nothing answers.
inline int http_get_status(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[64] = {};
      const ssize_t n = ::read(fd, buf, sizeof buf - 1);
      // "HTTP/1.1 200 OK"
      if (n > 12 && std::string(buf, 5) == "HTTP/") status = std::atoi(buf + 9);
    }
  }
  ::close(fd);
  return status;
}

struct RegistryAuth {
  // htpasswd: a bcrypt entry made with `htpasswd -Bbn user password`.
  std::string htpasswd_user;
  std::string htpasswd_password;
  // token: the registry trusts JWTs signed by a key whose certificate is in
  // rootcertbundle (distribution docs/spec/auth/jwt.md).
  struct Token {
    std::string realm;
    std::string service;
    std::string issuer;
    std::string rootcertbundle;  // PEM file
  };
  std::optional<Token> token;
};

// Where the registry sends its notifications (formats.md section 5). Blob
// events are dropped at the registry (ignore mediatypes octet-stream) and so
// are pulls, which 2.8 honours only alongside a media type.
struct RegistryNotifications {
  std::string url;           // http://127.0.0.1:PORT/v1/registry/events
  std::string header;        // e.g. "Authorization"
  std::string header_value;  // e.g. "Bearer s3cret"
  std::string timeout = "2s";
  int threshold = 3;
  std::string backoff = "200ms";
};

class RegistryFixture {
 public:
  RegistryFixture() = default;
  RegistryFixture(const RegistryFixture&) = delete;
  RegistryFixture& operator=(const RegistryFixture&) = delete;
  ~RegistryFixture() {
    child_.stop();
    if (!work_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(work_, ec);
    }
  }

  // Call before start(): the registry notifies this endpoint.
  void notify(RegistryNotifications n) { notifications_ = std::move(n); }

  // Starts the registry and waits until GET /v2/ answers. Returns "" on
  // success, else why not: callers GTEST_SKIP when a tool is missing.
  std::string start(const RegistryAuth& auth = {}) {
    if (!have_program("docker-registry")) return "docker-registry is not installed (Debian package docker-registry)";
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-registry-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return "mkdtemp failed";
    work_ = tmpl;
    port_ = free_loopback_port();
    if (port_ <= 0) return "no free loopback port";
    std::ostringstream config;
    config << "version: 0.1\n"
           << "log:\n  level: info\n  accesslog:\n    disabled: true\n"
           << "storage:\n  filesystem:\n    rootdirectory: " << storage().string() << "\n"
           << "  delete:\n    enabled: true\n"
           << "http:\n  addr: 127.0.0.1:" << port_ << "\n  secret: hashsieve-test-secret\n";
    if (!auth.htpasswd_user.empty()) {
      if (!have_program("htpasswd")) return "htpasswd is not installed (Debian package apache2-utils)";
      const std::string file = (work_ / "htpasswd").string();
      if (run_program({"sh", "-c", "htpasswd -Bbn \"$0\" \"$1\" > \"$2\"", auth.htpasswd_user, auth.htpasswd_password,
                       file}) != 0) {
        return "htpasswd failed";
      }
      config << "auth:\n  htpasswd:\n    realm: hashsieve-test\n    path: " << file << "\n";
    } else if (auth.token) {
      config << "auth:\n  token:\n    realm: " << auth.token->realm << "\n    service: " << auth.token->service
             << "\n    issuer: " << auth.token->issuer << "\n    rootcertbundle: " << auth.token->rootcertbundle << "\n";
    }
    if (notifications_) {
      const auto& n = *notifications_;
      config << "notifications:\n  endpoints:\n    - name: hashsieve\n      url: " << n.url << "\n"
             << "      headers:\n        " << n.header << ": [\"" << n.header_value << "\"]\n"
             << "      timeout: " << n.timeout << "\n      threshold: " << n.threshold << "\n"
             << "      backoff: " << n.backoff << "\n"
             << "      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n";
    }
    std::ofstream(work_ / "config.yml") << config.str();
    return launch();
  }

  // Stops the registry process and starts it again on the same port with the
  // same storage (its in-memory notification queue is lost, as in production).
  std::string restart() {
    child_.stop();
    return launch();
  }

 private:
  std::string launch() {
    if (!child_.start({"docker-registry", "serve", (work_ / "config.yml").string()}, false, log_path())) {
      return "could not run docker-registry";
    }
    for (int i = 0; i < 200; ++i) {
      const int status = http_get_status(port_, "/v2/");
      if (status == 200 || status == 401) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "docker-registry did not answer GET /v2/ within 10 s; log:\n" + log();
  }

 public:
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::filesystem::path& work_dir() const { return work_; }
  std::filesystem::path storage() const { return work_ / "storage"; }
  std::string log_path() const { return (work_ / "registry.log").string(); }
  std::string log() const {
    std::ifstream in(log_path());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Where the registry keeps a blob's bytes (filesystem driver layout).
  std::filesystem::path blob_data_path(const std::string& digest) const {
    const std::string hex = digest.substr(digest.find(':') + 1);
    return storage() / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex.substr(0, 2) / hex / "data";
  }

  // `skopeo copy` of oci:LAYOUT:TAG to this registry as REPO:TAG (all
  // platforms of an index when `all`). `creds` is "user:password" or "".
  // Returns "" on success, else skopeo's output.
  // `docker_format` converts to a Docker schema 2 manifest (skopeo --format
  // v2s2; digests then change, so they are not preserved).
  std::string push(const std::filesystem::path& layout, const std::string& layout_tag, const std::string& repo_tag,
                   bool all = false, const std::string& creds = "", bool docker_format = false) const {
    if (!have_program("skopeo")) return "skopeo is not installed";
    const std::string policy = (work_ / "policy.json").string();
    std::ofstream(policy) << R"({"default":[{"type":"insecureAcceptAnything"}]})";
    // --preserve-digests: push the layout byte for byte (no recompression),
    // so tests can compare digests with what they wrote.
    std::vector<std::string> argv = {"skopeo", "--policy", policy, "copy", "--dest-tls-verify=false"};
    if (docker_format) {
      argv.insert(argv.end(), {"--format", "v2s2"});
    } else {
      argv.push_back("--preserve-digests");
    }
    if (all) argv.push_back("--all");
    if (creds.empty()) {
      argv.push_back("--dest-no-creds");
    } else {
      argv.push_back("--dest-creds");
      argv.push_back(creds);
    }
    argv.push_back("oci:" + layout.string() + ":" + layout_tag);
    argv.push_back("docker://" + host() + "/" + repo_tag);
    const std::string out = (work_ / "skopeo.log").string();
    if (run_program(argv, out) == 0) return "";
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    return "skopeo copy failed: " + s.str();
  }

 private:
  Child child_;
  std::filesystem::path work_;
  int port_ = -1;
  std::optional<RegistryNotifications> notifications_;
};

// The token server of tests/support/token_server.py with a fresh RSA key and
// self-signed certificate (openssl CLI), for registries started with
// RegistryAuth::token = token_server.registry_auth().
class TokenServer {
 public:
  // `dir` receives the key and certificate. Returns "" or why it failed.
  std::string start(const std::filesystem::path& dir, const std::string& user, const std::string& password) {
    if (!have_program("openssl")) return "openssl is not installed";
    if (!have_program("python3")) return "python3 is not installed";
    dir_ = dir;
    const std::string key = (dir / "token-key.pem").string();
    const std::string cert = (dir / "token-cert.pem").string();
    if (run_program({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days",
                     "2", "-subj", "/CN=hashsieve-test-token"},
                    (dir / "openssl.log").string()) != 0) {
      return "openssl could not make the token certificate";
    }
    const std::string script = std::string(HASHSIEVE_TEST_SUPPORT_DIR) + "/token_server.py";
    if (!child_.start({"python3", script, key, cert, issuer(), service(), user + ":" + password}, true,
                      (dir / "token-server.log").string())) {
      return "could not run token_server.py";
    }
    port_ = child_.read_line();
    return port_.empty() ? "token_server.py did not start" : "";
  }
  std::string issuer() const { return "hashsieve-test-issuer"; }
  std::string service() const { return "hashsieve-test-registry"; }
  std::string realm() const { return "http://127.0.0.1:" + port_ + "/token"; }
  RegistryAuth registry_auth() const {
    RegistryAuth auth;
    auth.token = RegistryAuth::Token{realm(), service(), issuer(), (dir_ / "token-cert.pem").string()};
    return auth;
  }

 private:
  Child child_;
  std::filesystem::path dir_;
  std::string port_;
};

}  // namespace hashsieve::testsupport
