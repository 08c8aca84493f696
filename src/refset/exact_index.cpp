// ExactIndex: validation of the mapped file and the lookups.

#include "hashsieve/refset/exact_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "exact_index_format.h"
#include "hashsieve/core/file.h"

namespace hashsieve::refset {

using detail::load_u32;
using detail::load_u64;

std::string_view to_string(ExactHashType type) {
  switch (type) {
    case ExactHashType::md5: return "md5";
    case ExactHashType::sha1: return "sha1";
    case ExactHashType::sha256: return "sha256";
  }
  return "unknown";
}

struct ExactIndex::Mapping {
  void* data = nullptr;
  std::size_t size = 0;
  Mapping(void* d, std::size_t n) : data(d), size(n) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data != nullptr) ::munmap(data, size);
  }
};

namespace {

Error parse_error(const std::string& path, const std::string& what) {
  return Error(ErrorCode::parse_error, path + ": not a valid exact index: " + what);
}

// a + b <= limit without overflow.
bool fits(std::uint64_t a, std::uint64_t b, std::uint64_t limit) {
  return a <= limit && b <= limit - a;
}

template <std::size_t N>
std::optional<std::uint32_t> find_in(const ExactIndex::Section& s, const std::uint8_t* key) {
  constexpr std::size_t kRecord = N + 4;
  const std::uint64_t prefix = detail::key_prefix(key);
  const std::uint64_t b = detail::bucket_of(prefix, s.bits);
  const std::uint64_t lo = load_u32(s.dir + 4 * b);
  std::uint64_t hi = load_u32(s.dir + 4 * b + 4);
  // open() checked the directory, but the clamp keeps every read inside the
  // section even if the mapped file were changed underneath us.
  if (hi > s.count) hi = s.count;
  for (std::uint64_t i = lo; i < hi; ++i) {
    const std::uint8_t* r = s.records + i * kRecord;
    const std::uint64_t rp = detail::key_prefix(r);
    if (rp == prefix) {
      // Equal first 8 bytes say nothing: compare the rest in full.
      if (std::memcmp(r + 8, key + 8, N - 8) == 0) return load_u32(r + N);
    } else if (rp > prefix) {
      break;
    }
  }
  return std::nullopt;
}

// Software pipeline: the directory entry of key i+2D and the bucket of key i+D
// are prefetched while key i is looked up, so up to ~2D cache misses are in
// flight instead of one.
template <std::size_t N, typename Digest>
void find_many_in(const ExactIndex::Section& s, std::span<const Digest> keys,
                  std::span<std::optional<std::uint32_t>> out) {
  constexpr std::size_t kDistance = 8;
  constexpr std::size_t kRecord = N + 4;
  const std::size_t n = keys.size() < out.size() ? keys.size() : out.size();
  auto dir_entry = [&](std::size_t i) {
    return s.dir + 4 * detail::bucket_of(detail::key_prefix(keys[i].bytes().data()), s.bits);
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 2 * kDistance < n) __builtin_prefetch(dir_entry(i + 2 * kDistance));
    if (i + kDistance < n) {
      std::uint64_t lo = load_u32(dir_entry(i + kDistance));
      if (lo > s.count) lo = s.count;
      __builtin_prefetch(s.records + lo * kRecord);
      __builtin_prefetch(s.records + lo * kRecord + 63);
    }
    out[i] = find_in<N>(s, keys[i].bytes().data());
  }
}

}  // namespace

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Reads the whole file into a fresh anonymous mapping advised to use huge pages.
Result<void*> load_file(int fd, std::size_t size, std::size_t mapped_size, const std::string& path) {
  // Over-allocate and trim so the region starts on a huge-page boundary.
  void* raw = ::mmap(nullptr, mapped_size + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return errno_error(errno, path + ": mmap");
  const auto raw_addr = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (raw_addr + kHugePage - 1) & ~std::uintptr_t{kHugePage - 1};
  if (aligned > raw_addr) ::munmap(raw, aligned - raw_addr);
  if (aligned + mapped_size < raw_addr + mapped_size + kHugePage) {
    ::munmap(reinterpret_cast<void*>(aligned + mapped_size),
             raw_addr + mapped_size + kHugePage - (aligned + mapped_size));
  }
  void* p = reinterpret_cast<void*>(aligned);
  ::madvise(p, mapped_size, MADV_HUGEPAGE);  // best effort: THP may be off
  auto* dst = static_cast<std::uint8_t*>(p);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, dst + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;  // EIO: the file shrank under us
      ::munmap(p, mapped_size);
      return errno_error(err, path);
    }
    done += static_cast<std::size_t>(n);
  }
  ::mprotect(p, mapped_size, PROT_READ);
  return p;
}

}  // namespace

Result<ExactIndex> ExactIndex::open(const std::string& path, ExactIndexOpenOptions options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno_error(errno, path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_error(err, path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(ErrorCode::unsupported, path + ": not a regular file");
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < kExactIndexHeaderSize) {
    ::close(fd);
    return parse_error(path, "truncated header (" + std::to_string(file_size) + " bytes)");
  }
  void* p = nullptr;
  std::size_t mapped_size = static_cast<std::size_t>(file_size);
  if (options.load_into_memory) {
    mapped_size = (mapped_size + kHugePage - 1) & ~(kHugePage - 1);
    auto loaded = load_file(fd, static_cast<std::size_t>(file_size), mapped_size, path);
    ::close(fd);
    if (!loaded) return std::move(loaded).error();
    p = *loaded;
  } else {
    p = ::mmap(nullptr, mapped_size, PROT_READ, MAP_SHARED, fd, 0);
    const int mmap_err = errno;
    ::close(fd);  // the mapping keeps the file
    if (p == MAP_FAILED) return errno_error(mmap_err, path + ": mmap");
  }

  ExactIndex index;
  index.mapping_ = std::make_unique<Mapping>(p, mapped_size);
  index.size_ = static_cast<std::size_t>(file_size);
  const auto* base = static_cast<const std::uint8_t*>(p);

  if (std::memcmp(base + detail::kOffMagic, detail::kExactMagic, 8) != 0) {
    return parse_error(path, "bad magic");
  }
  const std::uint32_t version = load_u32(base + detail::kOffVersion);
  if (version != kExactIndexVersion) {
    return Error(ErrorCode::unsupported, path + ": exact index version " + std::to_string(version) +
                                             ", expected " + std::to_string(kExactIndexVersion));
  }
  if (load_u64(base + detail::kOffHeaderChecksum) !=
      detail::Checksum64::of(base, detail::kOffHeaderChecksum)) {
    return Error(ErrorCode::integrity_error, path + ": exact index header checksum mismatch");
  }
  if (load_u32(base + detail::kOffHeaderSize) != kExactIndexHeaderSize) {
    return parse_error(path, "unexpected header size");
  }
  const std::uint64_t recorded_size = load_u64(base + detail::kOffFileSize);
  if (recorded_size != file_size) {
    return parse_error(path, "file is " + std::to_string(file_size) + " bytes, header says " +
                                 std::to_string(recorded_size) + " (truncated?)");
  }

  for (std::size_t type = 0; type < kExactHashTypes; ++type) {
    const std::string name(to_string(static_cast<ExactHashType>(type)));
    const std::uint8_t* d = base + detail::kOffSections + type * detail::kSectionDescSize;
    const std::uint64_t count = load_u64(d + detail::kSecCount);
    const std::uint32_t bits = load_u32(d + detail::kSecBits);
    const std::uint32_t record_size = load_u32(d + detail::kSecRecordSize);
    const std::uint64_t records_offset = load_u64(d + detail::kSecRecordsOffset);
    const std::uint64_t dir_offset = load_u64(d + detail::kSecDirOffset);
    if (record_size != detail::kKeyBytes[type] + 4) {
      return parse_error(path, name + " section: bad record size");
    }
    if (count > detail::kMaxSectionKeys) return parse_error(path, name + " section: bad count");
    if (bits != detail::choose_dir_bits(count)) {
      return parse_error(path, name + " section: bad directory size");
    }
    // count < 2^32 and record_size <= 36, so the product cannot overflow.
    const std::uint64_t records_bytes = count * record_size;
    const std::uint64_t dir_bytes = ((std::uint64_t{1} << bits) + 1) * 4;
    if (records_offset < kExactIndexHeaderSize || !fits(records_offset, records_bytes, file_size)) {
      return parse_error(path, name + " records out of bounds");
    }
    if (dir_offset < kExactIndexHeaderSize || !fits(dir_offset, dir_bytes, file_size)) {
      return parse_error(path, name + " directory out of bounds");
    }
    Section& s = index.sections_[type];
    s.records = base + records_offset;
    s.dir = base + dir_offset;
    s.count = count;
    s.bits = bits;
    s.record_size = record_size;
    s.records_checksum = load_u64(d + detail::kSecRecordsChecksum);
    s.dir_checksum = load_u64(d + detail::kSecDirChecksum);

    // The directory decides which records a lookup reads, so it is checked in
    // full here (a sequential pass, ~2.7 bytes per key); the records are not.
    if (detail::Checksum64::of(s.dir, dir_bytes) != s.dir_checksum) {
      return Error(ErrorCode::integrity_error,
                   path + ": exact index " + name + " directory checksum mismatch");
    }
    std::uint32_t prev = 0;
    const std::uint64_t entries = dir_bytes / 4;
    for (std::uint64_t i = 0; i < entries; ++i) {
      const std::uint32_t e = load_u32(s.dir + 4 * i);
      if (e < prev || e > count || (i == 0 && e != 0)) {
        return parse_error(path, name + " directory is not monotonic");
      }
      prev = e;
    }
    if (prev != count) return parse_error(path, name + " directory does not end at the key count");
  }
  // Lookups touch a few random cache lines each: read-ahead would only evict.
  if (!options.load_into_memory) ::madvise(p, index.size_, MADV_RANDOM);
  return index;
}

std::optional<std::uint32_t> ExactIndex::find(const digest::Md5Digest& key) const {
  return find_in<16>(sections_[0], key.bytes().data());
}
std::optional<std::uint32_t> ExactIndex::find(const digest::Sha1Digest& key) const {
  return find_in<20>(sections_[1], key.bytes().data());
}
std::optional<std::uint32_t> ExactIndex::find(const digest::Sha256Digest& key) const {
  return find_in<32>(sections_[2], key.bytes().data());
}

void ExactIndex::find_many(std::span<const digest::Md5Digest> keys,
                           std::span<std::optional<std::uint32_t>> out) const {
  find_many_in<16>(sections_[0], keys, out);
}
void ExactIndex::find_many(std::span<const digest::Sha1Digest> keys,
                           std::span<std::optional<std::uint32_t>> out) const {
  find_many_in<20>(sections_[1], keys, out);
}
void ExactIndex::find_many(std::span<const digest::Sha256Digest> keys,
                           std::span<std::optional<std::uint32_t>> out) const {
  find_many_in<32>(sections_[2], keys, out);
}

Status ExactIndex::verify() const {
  for (std::size_t type = 0; type < kExactHashTypes; ++type) {
    const Section& s = sections_[type];
    const std::string name(to_string(static_cast<ExactHashType>(type)));
    if (detail::Checksum64::of(s.records, s.count * s.record_size) != s.records_checksum) {
      return Error(ErrorCode::integrity_error, "exact index " + name + " records checksum mismatch");
    }
    const std::size_t key_bytes = detail::kKeyBytes[type];
    for (std::uint64_t i = 0; i < s.count; ++i) {
      const std::uint8_t* r = s.records + i * s.record_size;
      if (i > 0 && std::memcmp(r - s.record_size, r, key_bytes) >= 0) {
        return Error(ErrorCode::integrity_error,
                     "exact index " + name + " keys not strictly increasing at " + std::to_string(i));
      }
      const std::uint64_t b = detail::bucket_of(detail::key_prefix(r), s.bits);
      if (i < load_u32(s.dir + 4 * b) || i >= load_u32(s.dir + 4 * b + 4)) {
        return Error(ErrorCode::integrity_error,
                     "exact index " + name + " key " + std::to_string(i) + " outside its bucket");
      }
    }
  }
  return {};
}

std::uint64_t ExactIndex::count(ExactHashType type) const {
  return sections_[static_cast<std::size_t>(type)].count;
}
std::uint64_t ExactIndex::size() const {
  return sections_[0].count + sections_[1].count + sections_[2].count;
}
std::uint64_t ExactIndex::file_bytes() const { return size_; }
unsigned ExactIndex::directory_bits(ExactHashType type) const {
  return sections_[static_cast<std::size_t>(type)].bits;
}
double ExactIndex::bytes_per_hash() const {
  const std::uint64_t n = size();
  return n == 0 ? 0.0 : static_cast<double>(size_) / static_cast<double>(n);
}

ExactIndex::ExactIndex(ExactIndex&&) noexcept = default;
ExactIndex& ExactIndex::operator=(ExactIndex&&) noexcept = default;
ExactIndex::~ExactIndex() = default;

}  // namespace hashsieve::refset
