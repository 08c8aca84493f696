// The clamd client against fake daemons: each test scripts a server thread
// on a unix socket, so framing, early hang-ups and silence are deterministic.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "hashsieve/scanners/clamav.h"
#include "scanner_test_util.h"

namespace hashsieve::scanners {
namespace {

using namespace std::string_literals;
using testing::TempDir;
using testing::bytes_of;

std::string read_exactly(int fd, std::size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

// Reads a NUL-terminated command.
std::string read_command(int fd) {
  std::string out;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != '\0') out += c;
  return out;
}

void send_text(int fd, const std::string& s) { (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

// Reads an INSTREAM body: returns the payload and the chunk count.
std::pair<std::string, int> read_instream(int fd) {
  std::string payload;
  int chunks = 0;
  for (;;) {
    const std::string len = read_exactly(fd, 4);
    if (len.size() != 4) return {payload, -1};
    const std::uint32_t n = (std::uint32_t{static_cast<unsigned char>(len[0])} << 24) |
                            (std::uint32_t{static_cast<unsigned char>(len[1])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(len[2])} << 8) |
                            std::uint32_t{static_cast<unsigned char>(len[3])};
    if (n == 0) return {payload, chunks};
    ++chunks;
    payload += read_exactly(fd, n);
  }
}

// A server that answers VERSION and then runs `on_scan` for each further
// connection, until the test ends.
class FakeClamd {
 public:
  explicit FakeClamd(std::function<void(int fd)> on_scan)
      : path_(dir_.file("clamd.sock")), listen_fd_(testing::listen_unix(path_)), on_scan_(std::move(on_scan)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeClamd() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  const std::string& path() const { return path_; }

 private:
  void serve() {
    while (!stop_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      const std::string cmd = read_command(fd);
      if (cmd == "zVERSION") {
        send_text(fd, "ClamAV 9.9.9/123/Sun Nov 22 00:00:00 2026"s + '\0');
      } else if (cmd == "zINSTREAM") {
        on_scan_(fd);
      }
      ::close(fd);
    }
  }

  TempDir dir_;
  std::string path_;
  int listen_fd_;
  std::function<void(int)> on_scan_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ClamdClient, StreamsChunksAndParsesTheVerdict) {
  std::string received;
  int chunks = 0;
  FakeClamd fake([&](int fd) {
    auto [payload, n] = read_instream(fd);
    received = payload;
    chunks = n;
    send_text(fd, payload.find("BAD") != std::string::npos ? "stream: Fake.Bad FOUND\0"s : "stream: OK\0"s);
  });
  ClamdOptions options;
  options.socket_path = fake.path();
  options.chunk_bytes = 1000;
  auto scanner = connect_clamd(options);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  EXPECT_EQ((*scanner)->name(), "clamd");
  EXPECT_EQ((*scanner)->version(), "9.9.9");
  EXPECT_EQ((*scanner)->signature_version(), "123/Sun Nov 22 00:00:00 2026");

  struct Case {
    std::string name;
    std::string input;
    int want_chunks;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"empty stream", "", 0, {}},
      {"one chunk", "hello", 1, {}},
      {"exactly one full chunk", std::string(1000, 'a'), 1, {}},
      {"several chunks, found", std::string(2500, 'x') + "BAD", 3, {"Fake.Bad"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = (*scanner)->scan_buffer(bytes_of(c.input), c.name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(received, c.input);
    EXPECT_EQ(chunks, c.want_chunks);
    std::vector<std::string> got;
    for (const auto& f : *r) got.push_back(f.signature);
    EXPECT_EQ(got, c.want);
  }
}

TEST(ClamdClient, DaemonClosingMidStreamIsUnavailable) {
  FakeClamd fake([](int fd) {
    (void)read_exactly(fd, 100);  // takes a little, then hangs up without a word
  });
  auto scanner = connect_clamd({fake.path(), {}, 4096});
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  const std::string big(8 << 20, 'q');  // far more than the socket buffers hold
  auto r = (*scanner)->scan_buffer(bytes_of(big), "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::unavailable) << r.error().message();
  EXPECT_NE(r.error().message().find("big.bin: clamd at " + fake.path() + " closed the connection"),
            std::string::npos)
      << r.error().message();
}

TEST(ClamdClient, DaemonRefusingTheStreamSaysWhy) {
  FakeClamd fake([](int fd) {
    (void)read_exactly(fd, 1000);
    send_text(fd, "INSTREAM size limit exceeded. ERROR\0"s);
  });
  auto scanner = connect_clamd({fake.path(), {}, 4096});
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_buffer(bytes_of(std::string(4 << 20, 'q')), "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded) << r.error().message();
  EXPECT_NE(r.error().message().find("size limit exceeded"), std::string::npos) << r.error().message();
}

TEST(ClamdClient, SilentDaemonTimesOut) {
  std::atomic<bool> release{false};
  FakeClamd fake([&](int fd) {
    (void)read_instream(fd);
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  ClamdOptions options{fake.path(), {}, 4096};
  options.limits.timeout = std::chrono::milliseconds(200);
  auto scanner = connect_clamd(options);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  const auto start = std::chrono::steady_clock::now();
  auto r = (*scanner)->scan_buffer(bytes_of("hello"), "h");
  const auto took = std::chrono::steady_clock::now() - start;
  release = true;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos) << r.error().message();
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A daemon that accepts nothing: once its backlog is full, connect() would
// block for ever; the timeout bounds it.
TEST(ClamdClient, FullBacklogTimesOut) {
  TempDir dir;
  const std::string path = dir.file("clamd.sock");
  const int listener = testing::listen_unix(path);
  ASSERT_EQ(::listen(listener, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 64; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    const bool queued = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    fillers.push_back(fd);
    if (!queued) break;
  }
  ClamdOptions options{path, {}, 4096};
  options.limits.timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto r = connect_clamd(options);
  const auto took = std::chrono::steady_clock::now() - start;
  for (int fd : fillers) ::close(fd);
  ::close(listener);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded) << r.error().message();
  EXPECT_NE(r.error().message().find("timed out connecting"), std::string::npos) << r.error().message();
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ClamdClient, GarbageReplyIsAParseError) {
  FakeClamd fake([](int fd) {
    (void)read_instream(fd);
    send_text(fd, "HTTP/1.1 400 Bad Request\r\n");
  });
  auto scanner = connect_clamd({fake.path(), {}, 4096});
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_buffer(bytes_of("x"), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
}

TEST(ClamdClient, OverTheSizeLimitNothingIsSent) {
  std::atomic<int> scans{0};
  FakeClamd fake([&](int fd) {
    ++scans;
    (void)read_instream(fd);
    send_text(fd, "stream: OK\0"s);
  });
  ClamdOptions options{fake.path(), {}, 4096};
  options.limits.max_bytes = 4;
  auto scanner = connect_clamd(options);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_buffer(bytes_of("hello"), "five");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
  EXPECT_EQ(scans, 0);
}

TEST(ClamdClient, ConnectionFailures) {
  TempDir dir;
  const std::string not_a_socket = dir.write("plain-file", "x");
  struct Case {
    std::string name;
    std::string path;
    ErrorCode want;
    std::string want_part;
  };
  const std::vector<Case> cases = {
      {"missing socket", dir.file("missing.sock"), ErrorCode::unavailable, "is clamd running?"},
      {"not a socket", not_a_socket, ErrorCode::unavailable, not_a_socket},
      {"empty path", "", ErrorCode::invalid_argument, "empty or longer"},
      {"path too long", "/tmp/" + std::string(200, 'x'), ErrorCode::invalid_argument, "empty or longer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = connect_clamd({c.path, {}, 4096});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.want) << r.error().message();
    EXPECT_NE(r.error().message().find(c.want_part), std::string::npos) << r.error().message();
  }
}

// A socket the process may not open. Root ignores file modes, so as root
// the check runs in a child that drops to an unprivileged user.
TEST(ClamdClient, PermissionDenied) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string path = dir.file("clamd.sock");
  const int fd = testing::listen_unix(path);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto check = [&]() -> int {
    auto r = connect_clamd({path, {}, 4096});
    if (r.ok()) return 1;
    if (r.error().code() != ErrorCode::permission_denied) return 2;
    if (r.error().message().find(path) == std::string::npos) return 3;
    return 0;
  };
  if (::geteuid() != 0) {
    EXPECT_EQ(check(), 0);
  } else {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
      ::_exit(check());
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: connected, 2: wrong code, 3: path missing, 10: setuid failed";
  }
  ::close(fd);
}

}  // namespace
}  // namespace hashsieve::scanners
