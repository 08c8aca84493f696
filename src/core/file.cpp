#include "hashsieve/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hashsieve {
namespace {

// Below this size a read() is cheaper than setting up and tearing down a mapping.
constexpr std::size_t kMmapThreshold = 256 * 1024;


}  // namespace

Error errno_error(int err, const std::string& what) {
  ErrorCode code = ErrorCode::io_error;
  if (err == ENOENT || err == ENOTDIR) code = ErrorCode::not_found;
  if (err == EACCES || err == EPERM) code = ErrorCode::permission_denied;
  if (err == EISDIR) code = ErrorCode::invalid_argument;
  return Error(code, what + ": " + std::strerror(err));
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<OpenedFile> open_regular_file(const std::string& path) {
  // O_NONBLOCK so that a FIFO or device is refused below instead of blocking
  // open(); it has no effect on reads of regular files.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return errno_error(errno, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, path);
  if (S_ISDIR(st.st_mode)) return Error(ErrorCode::invalid_argument, path + ": is a directory");
  if (!S_ISREG(st.st_mode)) return Error(ErrorCode::unsupported, path + ": not a regular file");
  return OpenedFile{std::move(fd), static_cast<std::uint64_t>(st.st_size)};
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  auto opened = open_regular_file(path);
  if (!opened.ok()) return std::move(opened).error();
  const int fd = opened->fd.get();

  MappedFile file;
  file.size_ = static_cast<std::size_t>(opened->size);
  if (file.size_ == 0) return file;
  if (file.size_ >= kMmapThreshold) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return errno_error(errno, path + ": mmap");
    ::madvise(p, file.size_, MADV_SEQUENTIAL);
    file.data_ = static_cast<const std::uint8_t*>(p);
    file.mapped_ = true;
    return file;
  }
  file.owned_ = std::make_unique<std::uint8_t[]>(file.size_);
  std::size_t done = 0;
  while (done < file.size_) {
    ssize_t n = ::read(fd, file.owned_.get() + done, file.size_ - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, path);
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  file.size_ = done;
  file.data_ = file.owned_.get();
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    owned_ = std::move(other.owned_);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() {
  if (mapped_ && data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.reset();
}

Result<std::string> read_all_fd(int fd) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "reading input");
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace hashsieve
