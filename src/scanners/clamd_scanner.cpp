// The clamd adapter: INSTREAM over clamd's unix socket.
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "hashsieve/core/file.h"
#include "hashsieve/scanners/clamav.h"
#include "hashsieve/scanners/clamd_reply.h"

namespace hashsieve::scanners {
namespace {

using Clock = std::chrono::steady_clock;

// A reply longer than this is not clamd talking.
constexpr std::size_t kMaxReplyBytes = 64 * 1024;

class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds timeout)
      : unlimited_(timeout.count() <= 0), end_(Clock::now() + timeout) {}
  // poll() timeout: -1 for no limit, else the milliseconds left (0 once over).
  int poll_ms() const {
    if (unlimited_) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
  }

 private:
  bool unlimited_;
  Clock::time_point end_;
};

class Connection {
 public:
  static Result<Connection> open(const std::string& socket_path, std::chrono::milliseconds timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
      return Error(ErrorCode::invalid_argument,
                   "clamd socket path \"" + socket_path + "\": empty or longer than " +
                       std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return errno_error(errno, "clamd: socket()");
    // connect() on a unix socket blocks while the daemon's backlog is full;
    // the send timeout bounds that wait (reads and writes poll instead).
    if (timeout.count() > 0) {
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
      tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do {
      rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      const std::string what = "clamd socket " + socket_path + ": " + std::strerror(err);
      if (err == EACCES || err == EPERM) return Error(ErrorCode::permission_denied, what);
      if (err == EAGAIN || err == ETIMEDOUT) {
        return Error(ErrorCode::limit_exceeded, "clamd: timed out connecting to " + socket_path);
      }
      if (err == ENOENT || err == ECONNREFUSED || err == ENOTSOCK) {
        return Error(ErrorCode::unavailable, what + " (is clamd running?)");
      }
      return Error(ErrorCode::unavailable, what);
    }
    return Connection(std::move(fd), socket_path);
  }

  // Writes all of `data`. A peer that closed is unavailable.
  Status send_all(const void* data, std::size_t size, const Deadline& deadline) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (size > 0) {
      if (auto s = wait(POLLOUT, deadline, "sending to"); !s.ok()) return s;
      const ssize_t n = ::send(fd_.get(), p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return Error(ErrorCode::unavailable,
                     "clamd at " + path_ + " closed the connection mid-stream: " + std::strerror(errno));
      }
      p += n;
      size -= static_cast<std::size_t>(n);
    }
    return {};
  }

  // Reads until clamd closes the connection (it does after each reply).
  Result<std::string> read_reply(const Deadline& deadline) {
    std::string reply;
    char buf[4096];
    for (;;) {
      if (auto s = wait(POLLIN, deadline, "waiting for the reply of"); !s.ok()) return std::move(s).error();
      const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        if (!reply.empty()) return reply;  // a reset after the reply: keep what arrived
        return Error(ErrorCode::unavailable,
                     "clamd at " + path_ + " closed the connection before replying: " + std::strerror(errno));
      }
      if (n == 0) return reply;
      reply.append(buf, static_cast<std::size_t>(n));
      if (reply.size() > kMaxReplyBytes) {
        return Error(ErrorCode::parse_error, "clamd at " + path_ + " sent a reply over " +
                                                 std::to_string(kMaxReplyBytes) + " bytes");
      }
    }
  }

 private:
  Connection(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  Status wait(short events, const Deadline& deadline, const char* doing) {
    pollfd p{fd_.get(), events, 0};
    for (;;) {
      const int rc = ::poll(&p, 1, deadline.poll_ms());
      if (rc > 0) return {};  // ready, or an error/hangup the next call reports
      if (rc == 0) {
        return Error(ErrorCode::limit_exceeded,
                     std::string("clamd: timed out ") + doing + " clamd at " + path_);
      }
      if (errno != EINTR) return errno_error(errno, "clamd: poll");
    }
  }

  UniqueFd fd_;
  std::string path_;
};

Result<std::string> command(const std::string& socket_path, std::string_view cmd,
                            std::chrono::milliseconds timeout) {
  const Deadline deadline(timeout);
  auto conn = Connection::open(socket_path, timeout);
  if (!conn.ok()) return std::move(conn).error();
  // "z" commands: NUL-terminated command and reply.
  std::string wire(1, 'z');
  wire.append(cmd);
  wire.push_back('\0');
  if (auto s = conn->send_all(wire.data(), wire.size(), deadline); !s.ok()) return std::move(s).error();
  return conn->read_reply(deadline);
}

class ClamdScanner final : public ExternalScanner {
 public:
  ClamdScanner(ClamdOptions options, ClamdVersion version)
      : options_(std::move(options)), version_(std::move(version)) {}

  std::string name() const override { return std::string(kClamdScannerName); }
  std::string version() const override { return version_.engine; }
  std::string signature_version() const override {
    // Without official databases clamd reports no database version; the
    // custom ones it loaded cannot be seen over the socket.
    return version_.database.empty() ? "unknown (clamd reports no database version)" : version_.database;
  }
  const ScanLimits& limits() const override { return options_.limits; }

  Result<std::vector<ScanFinding>> scan_buffer(std::span<const std::uint8_t> bytes,
                                               const std::string& display_name) const override {
    if (auto s = check_size(bytes.size(), options_.limits, display_name); !s.ok()) return std::move(s).error();
    auto names = instream(bytes);
    if (!names.ok()) return std::move(names).error().with_context(display_name);
    std::vector<ScanFinding> findings;
    for (std::string& n : *names) findings.push_back({name(), std::move(n), {}});
    return findings;
  }

 private:
  Result<std::vector<std::string>> instream(std::span<const std::uint8_t> bytes) const {
    const Deadline deadline(options_.limits.timeout);
    auto conn = Connection::open(options_.socket_path, options_.limits.timeout);
    if (!conn.ok()) return std::move(conn).error();
    static constexpr char kCommand[] = "zINSTREAM";
    Status sent = conn->send_all(kCommand, sizeof kCommand, deadline);  // with its NUL
    const std::size_t chunk = std::max<std::size_t>(1, std::min<std::size_t>(options_.chunk_bytes, 0x7fffffff));
    std::size_t offset = 0;
    while (sent.ok() && offset <= bytes.size()) {
      // The last chunk has length zero and ends the stream.
      const std::size_t n = std::min(chunk, bytes.size() - offset);
      const std::uint32_t len = static_cast<std::uint32_t>(n);
      const std::uint8_t header[4] = {static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16),
                                      static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
      sent = conn->send_all(header, sizeof header, deadline);
      if (sent.ok() && n > 0) sent = conn->send_all(bytes.data() + offset, n, deadline);
      if (n == 0) break;
      offset += n;
    }
    if (!sent.ok() && sent.error().code() != ErrorCode::unavailable) return std::move(sent).error();
    // clamd may have refused the stream (size limit) and closed: its reply,
    // if any, says why, so read it even after a failed send.
    auto reply = conn->read_reply(deadline);
    if (!reply.ok()) {
      if (!sent.ok()) return std::move(sent).error();
      return std::move(reply).error();
    }
    if (reply->empty()) {
      if (!sent.ok()) return std::move(sent).error();
      return Error(ErrorCode::unavailable,
                   "clamd at " + options_.socket_path + " closed the connection without a reply");
    }
    return parse_clamd_scan_reply(*reply);
  }

  ClamdOptions options_;
  ClamdVersion version_;
};

}  // namespace

Result<std::unique_ptr<ExternalScanner>> connect_clamd(const ClamdOptions& options) {
  auto reply = command(options.socket_path, "VERSION", options.limits.timeout);
  if (!reply.ok()) return std::move(reply).error();
  auto version = parse_clamd_version(*reply);
  if (!version.ok()) return std::move(version).error().with_context("clamd at " + options.socket_path);
  return std::unique_ptr<ExternalScanner>(std::make_unique<ClamdScanner>(options, std::move(*version)));
}

}  // namespace hashsieve::scanners
