// File-system access for the hashing paths: a read-only mapping of a regular
// file, and a chunked reader for streams. Errors carry errno text and the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve {

// An owned file descriptor, closed when it goes out of scope.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }

 private:
  int fd_;
};

struct OpenedFile {
  UniqueFd fd;
  std::uint64_t size = 0;
};

// Opens `path` for reading and checks it is a regular file: a directory is
// invalid_argument, a FIFO, socket or device is unsupported (refused without
// blocking on open), a missing file not_found. Every error names the path.
Result<OpenedFile> open_regular_file(const std::string& path);

// A read-only view of a whole regular file. Small files are read into memory,
// large ones are mmap-ed; either way bytes() stays valid for the object's life.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }

  MappedFile(MappedFile&&) noexcept;
  MappedFile& operator=(MappedFile&&) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

 private:
  MappedFile() = default;
  void release();

  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  std::unique_ptr<std::uint8_t[]> owned_;
};

// Reads a whole stream (stdin, a pipe) into memory.
Result<std::string> read_all_fd(int fd);

// Maps errno to an ErrorCode and message, prefixed by `what`.
Error errno_error(int err, const std::string& what);

}  // namespace hashsieve
