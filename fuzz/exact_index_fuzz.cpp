// Fuzzes ExactIndex::open and the lookups on whatever it accepts: the input is
// written to a temporary file (open() maps a file) and opened as an index; if
// it opens, keys cut from the input itself (which holds the records of a valid
// index) are looked up, singly and batched, and verify() runs. Each input is
// tried as is and with its checksums recomputed.
// Seeds: fuzz/corpus/exact_index/ (small valid indexes).

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../src/refset/exact_index_format.h"
#include "hashsieve/refset/exact_index.h"

namespace {

template <typename Digest>
void lookups(const hashsieve::refset::ExactIndex& index, const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kBytes = Digest::kBytes;
  std::vector<Digest> keys;
  // Every 4-byte aligned window of the input (records start on such offsets
  // when the sections are 64-byte aligned) plus the all-zero key.
  keys.emplace_back();
  for (std::size_t off = 0; off + kBytes <= size && keys.size() < 4096; off += 4) {
    keys.push_back(Digest::from_bytes({data + off, kBytes}));
  }
  std::vector<std::optional<std::uint32_t>> out(keys.size());
  index.find_many(std::span<const Digest>(keys), out);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (index.find(keys[i]) != out[i]) __builtin_trap();  // batched and single must agree
  }
}

// The checksums would stop almost every mutation at the door, so the input is
// also tried with them recomputed: that reaches the bounds and directory checks
// behind them, which must hold on their own against a crafted file.
std::vector<std::uint8_t> fix_checksums(const std::uint8_t* data, std::size_t size) {
  namespace d = hashsieve::refset::detail;
  std::vector<std::uint8_t> out(data, data + size);
  if (size < hashsieve::refset::kExactIndexHeaderSize) return out;
  for (std::size_t type = 0; type < hashsieve::refset::kExactHashTypes; ++type) {
    std::uint8_t* desc = out.data() + d::kOffSections + type * d::kSectionDescSize;
    const std::uint32_t bits = d::load_u32(desc + d::kSecBits);
    const std::uint64_t dir_offset = d::load_u64(desc + d::kSecDirOffset);
    if (bits > d::kMaxDirBits) continue;
    const std::uint64_t dir_bytes = ((std::uint64_t{1} << bits) + 1) * 4;
    if (dir_offset > size || dir_bytes > size - dir_offset) continue;
    d::store_u64(desc + d::kSecDirChecksum, d::Checksum64::of(out.data() + dir_offset, dir_bytes));
  }
  d::store_u64(out.data() + d::kOffHeaderChecksum, d::Checksum64::of(out.data(), d::kOffHeaderChecksum));
  return out;
}

void try_open(const std::uint8_t* data, std::size_t size) {
  char name[] = "/tmp/exact-index-fuzz-XXXXXX";
  const int fd = ::mkstemp(name);
  if (fd < 0) return;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done == size) {
    auto index = hashsieve::refset::ExactIndex::open(name);
    if (index) {
      lookups<hashsieve::digest::Md5Digest>(*index, data, size);
      lookups<hashsieve::digest::Sha1Digest>(*index, data, size);
      lookups<hashsieve::digest::Sha256Digest>(*index, data, size);
      (void)index->verify();
      (void)index->bytes_per_hash();
    }
  }
  ::unlink(name);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try_open(data, size);
  const auto fixed = fix_checksums(data, size);
  try_open(fixed.data(), fixed.size());
  return 0;
}
