// Fuzzes SimilarityIndex::open and the candidate queries on whatever it
// accepts: the input is written to a temporary file (open() maps a file) and
// opened; if it opens, content keys cut from the input itself (which holds
// the keys of a valid index) and TLSH digests made from its bytes are looked
// up. Every returned candidate must be a valid entry id. Format 2 (TLSH
// postings with digest headers, stored TLSH digests) is what the seeds hold.
// Seeds: fuzz/corpus/similarity_index/ (small valid indexes of `refset build`).

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hashsieve/refset/similarity_index.h"

namespace {

void queries(const hashsieve::refset::SimilarityIndex& index, const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint32_t> keys;
  for (std::size_t off = 0; off + 4 <= size && keys.size() < 4096; off += 4) {
    std::uint32_t k;
    std::memcpy(&k, data + off, 4);
    keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::uint32_t> out;
  for (unsigned min_shared : {1u, 2u}) {
    index.sdbf_candidates(keys, out, min_shared);
    for (const auto id : out) {
      if (id >= index.sdbf_entries()) __builtin_trap();
    }
  }
  for (std::size_t off = 0; off + 35 <= size && off < 35 * 64; off += 35) {
    std::array<std::uint8_t, hashsieve::digest::kTlshBodyBytes> body{};
    std::memcpy(body.data(), data + off + 3, body.size());
    const auto digest = hashsieve::digest::TlshDigest::from_fields(data[off], data[off + 1], data[off + 2] & 15,
                                                                     data[off + 2] >> 4, body);
    // The default (pruned by the stored digests) and every candidate.
    for (const int max_distance : {hashsieve::refset::kTlshCandidateMaxDistance, INT_MAX}) {
      index.tlsh_candidates(digest, out, hashsieve::refset::kTlshMinSharedGroups,
                            hashsieve::refset::kTlshMaxPostingRead, max_distance);
      for (const auto id : out) {
        if (id >= index.tlsh_entries()) __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  char name[] = "/tmp/similarity-index-fuzz-XXXXXX";
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
    auto index = hashsieve::refset::SimilarityIndex::open(name);
    if (index) queries(*index, data, size);
  }
  ::unlink(name);
  return 0;
}
