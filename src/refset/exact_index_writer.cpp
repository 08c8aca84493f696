// ExactIndexWriter: external sort (in-memory runs spilled to unlinked temp
// files) followed by a k-way merge that deduplicates and streams the final file.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exact_index_format.h"
#include "hashsieve/core/file.h"
#include "hashsieve/refset/exact_index.h"

namespace hashsieve::refset {
namespace {

using detail::Checksum64;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  // Closes and reports the error close() may carry (NFS, delayed allocation).
  Status close(const std::string& what) {
    const int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0) return errno_error(errno, what + ": close");
    return {};
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Status write_all_at(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t offset,
                    const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, what);
    }
    if (w == 0) return Error(ErrorCode::io_error, what + ": short write");
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return {};
}

Status read_all_at(int fd, std::uint8_t* p, std::size_t n, std::uint64_t offset,
                   const std::string& what) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, what);
    }
    if (r == 0) return Error(ErrorCode::io_error, what + ": unexpected end of file");
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return {};
}

// In memory a record is the key followed by its value, exactly the on-disk
// record, so runs are written straight from the vectors.
template <std::size_t N>
struct Rec {
  std::array<std::uint8_t, N> key;
  std::uint32_t value;
};
static_assert(sizeof(Rec<16>) == 20 && sizeof(Rec<20>) == 24 && sizeof(Rec<32>) == 36);

inline bool key_less(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  const std::uint64_t pa = detail::key_prefix(a);
  const std::uint64_t pb = detail::key_prefix(b);
  if (pa != pb) return pa < pb;
  return std::memcmp(a + 8, b + 8, n - 8) < 0;
}

// A buffered sequential writer at explicit offsets that feeds a checksum.
class OutFile {
 public:
  OutFile(int fd, std::string what) : fd_(fd), what_(std::move(what)), buf_(kBufBytes) {}

  Status write(const std::uint8_t* p, std::size_t n) {
    if (sum_ != nullptr) sum_->update(p, n);
    while (n > 0) {
      const std::size_t take = std::min(n, buf_.size() - len_);
      std::memcpy(buf_.data() + len_, p, take);
      len_ += take;
      p += take;
      n -= take;
      if (len_ == buf_.size()) {
        if (Status s = flush(); !s) return s;
      }
    }
    return {};
  }
  Status pad_to_alignment() {
    static constexpr std::uint8_t kZeros[detail::kAlign] = {};
    const std::uint64_t target = detail::align_up(pos());
    return write(kZeros, static_cast<std::size_t>(target - pos()));
  }
  Status flush() {
    if (Status s = write_all_at(fd_, buf_.data(), len_, flushed_, what_); !s) return s;
    flushed_ += len_;
    len_ = 0;
    return {};
  }
  std::uint64_t pos() const { return flushed_ + len_; }
  void set_checksum(Checksum64* sum) { sum_ = sum; }

 private:
  static constexpr std::size_t kBufBytes = std::size_t{1} << 20;
  int fd_;
  std::string what_;
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0;
  std::uint64_t flushed_ = 0;
  Checksum64* sum_ = nullptr;
};

// One sorted, deduplicated stream of records of one type: a spilled run
// segment read through a buffer, or the in-memory buffer itself.
struct Source {
  const std::uint8_t* cur = nullptr;
  const std::uint8_t* end = nullptr;
  int fd = -1;
  std::uint64_t file_offset = 0;
  std::uint64_t file_remaining = 0;  // records not yet read into buf
  std::vector<std::uint8_t> buf;
  bool started = false;

  // Moves to the next record; false at the end. Call once before the first use.
  Result<bool> next(std::size_t record_size, std::size_t buf_records) {
    if (started) cur += record_size;
    started = true;
    if (cur < end) return true;
    if (file_remaining == 0) return false;
    const std::uint64_t take = std::min<std::uint64_t>(file_remaining, buf_records);
    const std::size_t bytes = static_cast<std::size_t>(take) * record_size;
    buf.resize(bytes);
    if (Status s = read_all_at(fd, buf.data(), bytes, file_offset, "reading exact-index run"); !s) {
      return std::move(s).error();
    }
    file_offset += bytes;
    file_remaining -= take;
    cur = buf.data();
    end = cur + bytes;
    return true;
  }
};

struct Run {
  UniqueFd fd;
  std::uint64_t offset[kExactHashTypes]{};
  std::uint64_t count[kExactHashTypes]{};
};

}  // namespace

struct ExactIndexWriter::Impl {
  ExactIndexWriterOptions options;
  std::vector<Rec<16>> md5;
  std::vector<Rec<20>> sha1;
  std::vector<Rec<32>> sha256;
  std::vector<Run> runs;
  std::optional<Error> failed;
  bool finished = false;
  std::uint64_t added = 0;
  std::uint64_t spilled = 0;
  // More runs than this are merged into one before spilling goes on.
  static constexpr std::size_t kMaxRuns = 64;

  std::size_t capacity_bytes() const {
    return md5.capacity() * sizeof(md5[0]) + sha1.capacity() * sizeof(sha1[0]) +
           sha256.capacity() * sizeof(sha256[0]);
  }

  Status check_usable() const {
    if (failed) return *failed;
    if (finished) return Error(ErrorCode::invalid_argument, "exact-index writer already finished");
    return {};
  }

  Status fail(Error e) {
    failed = e;
    return e;
  }

  template <std::size_t N>
  Status add(std::vector<Rec<N>>& vec, const std::array<std::uint8_t, N>& key, std::uint32_t value) {
    if (Status s = check_usable(); !s) return s;
    if (vec.size() == vec.capacity()) {
      // Grow by hand so that old + new buffers together stay within the
      // budget; when that is impossible, spill everything and reuse the space.
      const std::size_t others = capacity_bytes() - vec.capacity() * sizeof(Rec<N>);
      const std::size_t budget = options.memory_budget;
      const std::size_t room = budget > others + vec.capacity() * sizeof(Rec<N>)
                                   ? (budget - others) / sizeof(Rec<N>) - vec.capacity()
                                   : 0;
      const std::size_t want = std::max<std::size_t>(1024, vec.capacity() * 2);
      const std::size_t grow_to = std::min(want, room);
      if (grow_to > vec.capacity()) {
        vec.reserve(grow_to);
      } else if (!vec.empty()) {
        if (Status s = spill(); !s) return fail(std::move(s).error());
      }
      if (vec.capacity() == 0) vec.reserve(1);  // a budget too small for one record
    }
    vec.push_back(Rec<N>{key, value});
    ++added;
    return {};
  }

  std::uint32_t merge_values(std::uint32_t a, std::uint32_t b) const {
    return options.merge ? options.merge(a, b) : std::min(a, b);
  }

  template <std::size_t N>
  void sort_dedup(std::vector<Rec<N>>& vec) const {
    std::sort(vec.begin(), vec.end(), [](const Rec<N>& a, const Rec<N>& b) {
      return key_less(a.key.data(), b.key.data(), N);
    });
    std::size_t out = 0;
    for (std::size_t i = 0; i < vec.size(); ++i) {
      if (out > 0 && vec[out - 1].key == vec[i].key) {
        vec[out - 1].value = merge_values(vec[out - 1].value, vec[i].value);
      } else {
        vec[out++] = vec[i];
      }
    }
    vec.resize(out);
  }

  Result<std::string> temp_dir() const {
    if (!options.temp_dir.empty()) return options.temp_dir;
    std::error_code ec;
    auto dir = std::filesystem::temp_directory_path(ec);
    if (ec) return Error(ErrorCode::not_found, "no temporary directory: " + ec.message());
    return dir.string();
  }

  // Sorts the in-memory records and writes them as one run file.
  Status spill() {
    auto dir = temp_dir();
    if (!dir) return std::move(dir).error();
    std::string name = *dir + "/hashsieve-exact-run-XXXXXX";
    const int raw = ::mkostemp(name.data(), O_CLOEXEC);
    if (raw < 0) return errno_error(errno, "creating exact-index run file in " + *dir);
    Run run;
    run.fd = UniqueFd(raw);
    // Unlinked at once: the open descriptor keeps the data, and nothing is
    // left on disk whatever happens to this process.
    ::unlink(name.c_str());

    std::uint64_t offset = 0;
    auto write_vec = [&](auto& vec, std::size_t type) -> Status {
      sort_dedup(vec);
      const std::size_t bytes = vec.size() * sizeof(vec[0]);
      if (Status s = write_all_at(run.fd.get(), reinterpret_cast<const std::uint8_t*>(vec.data()),
                                  bytes, offset, "writing exact-index run file in " + *dir);
          !s) {
        return s;
      }
      run.offset[type] = offset;
      run.count[type] = vec.size();
      offset += bytes;
      vec.clear();  // keeps the capacity for the next run
      return {};
    };
    if (Status s = write_vec(md5, 0); !s) return s;
    if (Status s = write_vec(sha1, 1); !s) return s;
    if (Status s = write_vec(sha256, 2); !s) return s;
    runs.push_back(std::move(run));
    ++spilled;
    if (runs.size() >= kMaxRuns) return compact_runs();
    return {};
  }

  // Merges all runs into one, so open descriptors and merge buffers stay
  // bounded however small the budget is relative to the input.
  Status compact_runs() {
    auto dir = temp_dir();
    if (!dir) return std::move(dir).error();
    std::string name = *dir + "/hashsieve-exact-run-XXXXXX";
    const int raw = ::mkostemp(name.data(), O_CLOEXEC);
    if (raw < 0) return errno_error(errno, "creating exact-index run file in " + *dir);
    Run merged;
    merged.fd = UniqueFd(raw);
    ::unlink(name.c_str());
    OutFile out(merged.fd.get(), "writing exact-index run file in " + *dir);
    std::vector<Rec<16>> no_md5;
    std::vector<Rec<20>> no_sha1;
    std::vector<Rec<32>> no_sha256;
    for (std::size_t type = 0; type < kExactHashTypes; ++type) {
      merged.offset[type] = out.pos();
      Result<std::uint64_t> count = type == 0   ? merge_section(no_md5, type, out)
                                    : type == 1 ? merge_section(no_sha1, type, out)
                                                : merge_section(no_sha256, type, out);
      if (!count) return std::move(count).error();
      merged.count[type] = *count;
    }
    if (Status s = out.flush(); !s) return s;
    runs.clear();
    runs.push_back(std::move(merged));
    return {};
  }

  void release_memory() {
    std::vector<Rec<16>>().swap(md5);
    std::vector<Rec<20>>().swap(sha1);
    std::vector<Rec<32>>().swap(sha256);
  }

  // Merges all sources of one type into `out`; returns the distinct key count.
  template <std::size_t N>
  Result<std::uint64_t> merge_section(std::vector<Rec<N>>& mem, std::size_t type, OutFile& out) {
    constexpr std::size_t kRecord = N + 4;
    std::vector<Source> sources;
    const std::size_t per_source =
        std::clamp<std::size_t>(options.memory_budget / (runs.size() + 1), 64 * 1024, 4 << 20);
    const std::size_t buf_records = std::max<std::size_t>(1, per_source / kRecord);
    if (!mem.empty()) {
      // A memory source is a "file" already fully buffered.
      Source s;
      s.cur = reinterpret_cast<const std::uint8_t*>(mem.data());
      s.end = s.cur + mem.size() * kRecord;
      sources.push_back(std::move(s));
    }
    for (Run& run : runs) {
      if (run.count[type] == 0) continue;
      Source s;
      s.fd = run.fd.get();
      s.file_offset = run.offset[type];
      s.file_remaining = run.count[type];
      sources.push_back(std::move(s));
    }
    // Min-heap of source indices by current key; ties by index, so the merge
    // order is deterministic.
    std::vector<std::size_t> heap;
    for (std::size_t i = 0; i < sources.size(); ++i) {
      auto more = sources[i].next(kRecord, buf_records);
      if (!more) return std::move(more).error();
      if (*more) heap.push_back(i);
    }
    auto greater = [&](std::size_t a, std::size_t b) {
      const std::uint8_t* ka = sources[a].cur;
      const std::uint8_t* kb = sources[b].cur;
      if (key_less(kb, ka, N)) return true;
      if (key_less(ka, kb, N)) return false;
      return a > b;
    };
    std::make_heap(heap.begin(), heap.end(), greater);

    std::uint8_t pending[kRecord];
    bool have_pending = false;
    std::uint64_t count = 0;
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), greater);
      Source& src = sources[heap.back()];
      const std::uint8_t* rec = src.cur;
      if (have_pending && std::memcmp(pending, rec, N) == 0) {
        detail::store_u32(pending + N,
                          merge_values(detail::load_u32(pending + N), detail::load_u32(rec + N)));
      } else {
        if (have_pending) {
          if (Status s = out.write(pending, kRecord); !s) return std::move(s).error();
          ++count;
        }
        std::memcpy(pending, rec, kRecord);
        have_pending = true;
      }
      auto more = src.next(kRecord, buf_records);
      if (!more) return std::move(more).error();
      if (*more) {
        std::push_heap(heap.begin(), heap.end(), greater);
      } else {
        heap.pop_back();
      }
    }
    if (have_pending) {
      if (Status s = out.write(pending, kRecord); !s) return std::move(s).error();
      ++count;
    }
    if (count > detail::kMaxSectionKeys) {
      return Error(ErrorCode::limit_exceeded,
                   "exact index: more than 2^32-1 keys of type " +
                       std::string(to_string(static_cast<ExactHashType>(type))));
    }
    return count;
  }

  // Streams the directory of a section whose records are already in the file.
  static Status write_directory(int fd, std::uint64_t records_offset, std::uint64_t count,
                                std::size_t record_size, unsigned bits, OutFile& out) {
    const std::size_t chunk_records = (std::size_t{1} << 20) / record_size;
    std::vector<std::uint8_t> buf(chunk_records * record_size);
    const std::uint64_t buckets = std::uint64_t{1} << bits;
    std::uint64_t next_bucket = 0;  // the next directory entry to emit
    std::uint8_t entry[4];
    auto emit_until = [&](std::uint64_t bucket_inclusive, std::uint64_t index) -> Status {
      while (next_bucket <= bucket_inclusive) {
        detail::store_u32(entry, static_cast<std::uint32_t>(index));
        if (Status s = out.write(entry, 4); !s) return s;
        ++next_bucket;
      }
      return {};
    };
    for (std::uint64_t done = 0; done < count;) {
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(count - done, chunk_records));
      if (Status s = read_all_at(fd, buf.data(), take * record_size,
                                 records_offset + done * record_size, "re-reading exact index");
          !s) {
        return s;
      }
      for (std::size_t i = 0; i < take; ++i) {
        const std::uint64_t b =
            detail::bucket_of(detail::key_prefix(buf.data() + i * record_size), bits);
        if (Status s = emit_until(b, done + i); !s) return s;
      }
      done += take;
    }
    return emit_until(buckets, count);
  }

  Result<ExactIndexStats> finish(const std::string& path) {
    const std::string tmp = path + ".tmp";
    const int raw = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (raw < 0) return errno_error(errno, "creating " + tmp);
    UniqueFd fd(raw);
    auto result = write_file(fd, tmp);
    if (result && options.durable) {
      if (::fsync(fd.get()) != 0) result = errno_error(errno, "fsync " + tmp);
    }
    if (result) {
      if (Status s = fd.close(tmp); !s) result = std::move(s).error();
    }
    if (result && ::rename(tmp.c_str(), path.c_str()) != 0) {
      result = errno_error(errno, "renaming " + tmp + " to " + path);
    }
    if (!result) {
      fd.reset();
      ::unlink(tmp.c_str());
      return result;
    }
    if (!options.durable) return result;
    // Make the rename itself durable.
    const std::string parent = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return result;
  }

  Result<ExactIndexStats> write_file(UniqueFd& fd, const std::string& tmp) {
    // With runs on disk, spill the rest too so the merge buffers get the budget.
    if (!runs.empty() && (!md5.empty() || !sha1.empty() || !sha256.empty())) {
      if (Status s = spill(); !s) return std::move(s).error();
    }
    if (!runs.empty()) release_memory();
    sort_dedup(md5);
    sort_dedup(sha1);
    sort_dedup(sha256);

    OutFile out(fd.get(), "writing " + tmp);
    std::uint8_t header[kExactIndexHeaderSize] = {};
    if (Status s = out.write(header, sizeof header); !s) return std::move(s).error();

    ExactIndexStats stats;
    stats.added = added;
    stats.runs = spilled;
    for (std::size_t type = 0; type < kExactHashTypes; ++type) {
      const std::size_t record_size = detail::kKeyBytes[type] + 4;
      if (Status s = out.pad_to_alignment(); !s) return std::move(s).error();
      const std::uint64_t records_offset = out.pos();
      Checksum64 records_sum;
      out.set_checksum(&records_sum);
      Result<std::uint64_t> count = type == 0   ? merge_section(md5, type, out)
                                    : type == 1 ? merge_section(sha1, type, out)
                                                : merge_section(sha256, type, out);
      out.set_checksum(nullptr);
      if (!count) return std::move(count).error();
      if (Status s = out.flush(); !s) return std::move(s).error();
      if (Status s = out.pad_to_alignment(); !s) return std::move(s).error();
      const std::uint64_t dir_offset = out.pos();
      const unsigned bits = detail::choose_dir_bits(*count);
      Checksum64 dir_sum;
      out.set_checksum(&dir_sum);
      if (Status s = write_directory(fd.get(), records_offset, *count, record_size, bits, out); !s) {
        return std::move(s).error();
      }
      out.set_checksum(nullptr);

      std::uint8_t* d = header + detail::kOffSections + type * detail::kSectionDescSize;
      detail::store_u64(d + detail::kSecCount, *count);
      detail::store_u32(d + detail::kSecBits, bits);
      detail::store_u32(d + detail::kSecRecordSize, static_cast<std::uint32_t>(record_size));
      detail::store_u64(d + detail::kSecRecordsOffset, records_offset);
      detail::store_u64(d + detail::kSecDirOffset, dir_offset);
      detail::store_u64(d + detail::kSecRecordsChecksum, records_sum.finish());
      detail::store_u64(d + detail::kSecDirChecksum, dir_sum.finish());
      stats.counts[type] = *count;
    }
    if (Status s = out.flush(); !s) return std::move(s).error();
    release_memory();
    runs.clear();

    std::memcpy(header + detail::kOffMagic, detail::kExactMagic, 8);
    detail::store_u32(header + detail::kOffVersion, kExactIndexVersion);
    detail::store_u32(header + detail::kOffHeaderSize, kExactIndexHeaderSize);
    detail::store_u64(header + detail::kOffFileSize, out.pos());
    detail::store_u64(header + detail::kOffHeaderChecksum,
                      Checksum64::of(header, detail::kOffHeaderChecksum));
    if (Status s = write_all_at(fd.get(), header, sizeof header, 0, "writing " + tmp); !s) {
      return std::move(s).error();
    }
    stats.file_bytes = out.pos();
    stats.duplicates = stats.added - stats.total();
    return stats;
  }
};

ExactIndexWriter::ExactIndexWriter(ExactIndexWriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}
ExactIndexWriter::ExactIndexWriter(ExactIndexWriter&&) noexcept = default;
ExactIndexWriter& ExactIndexWriter::operator=(ExactIndexWriter&&) noexcept = default;
ExactIndexWriter::~ExactIndexWriter() = default;

Status ExactIndexWriter::add(const digest::Md5Digest& key, std::uint32_t value) {
  return impl_->add(impl_->md5, key.bytes(), value);
}
Status ExactIndexWriter::add(const digest::Sha1Digest& key, std::uint32_t value) {
  return impl_->add(impl_->sha1, key.bytes(), value);
}
Status ExactIndexWriter::add(const digest::Sha256Digest& key, std::uint32_t value) {
  return impl_->add(impl_->sha256, key.bytes(), value);
}

Result<ExactIndexStats> ExactIndexWriter::finish(const std::string& path) {
  if (Status s = impl_->check_usable(); !s) return std::move(s).error();
  impl_->finished = true;
  auto result = impl_->finish(path);
  impl_->release_memory();
  impl_->runs.clear();
  return result;
}

}  // namespace hashsieve::refset
