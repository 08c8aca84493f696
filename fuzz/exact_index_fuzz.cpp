// Fuzzes ExactIndex::open and the lookups on whatever it accepts: the input is
// written to a temporary file (open() maps a file) and opened as an index; if
// it opens, keys cut from the input itself (which holds the records of a valid
// index) are looked up, singly and batched, and verify() runs.
// Seeds: fuzz/corpus/exact_index/ (small valid indexes).

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  char name[] = "/tmp/exact-index-fuzz-XXXXXX";
  const int fd = ::mkstemp(name);
  if (fd < 0) return 0;
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
  return 0;
}
