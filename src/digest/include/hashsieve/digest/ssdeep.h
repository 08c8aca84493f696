// ssdeep (context-triggered piecewise hashing) through Debian's libfuzzy.
//
// A thin adapter: SsdeepHasher streams bytes into a libfuzzy state and gives
// the digest text ("blocksize:hash1:hash2", as `ssdeep` prints it before the
// file name); ssdeep_compare scores two digests 0..100 with fuzzy_compare.
// libfuzzy stays a private dependency of the digest library.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "hashsieve/core/result.h"

struct fuzzy_state;

namespace hashsieve::digest {

// Name and version of the generator, for cache keys and result provenance.
// libfuzzy has no run-time version query, so this names the Debian
// package's upstream release we build and test against.
inline constexpr std::string_view kSsdeepHasherName = "ssdeep";
inline constexpr std::string_view kSsdeepHasherVersion = "libfuzzy-2.14";

class SsdeepHasher {
 public:
  SsdeepHasher();

  // Optional: announcing the total input length up front lets libfuzzy skip
  // block sizes that cannot be chosen (faster, same digest). Feeding a
  // different number of bytes then makes finish() fail.
  void set_expected_length(std::uint64_t total_bytes);

  // Feeds bytes. A libfuzzy failure (e.g. input beyond its size limit) is
  // remembered and reported by finish().
  void update(std::span<const std::uint8_t> data);

  // The digest of everything fed so far; does not change the state.
  Result<std::string> finish() const;

 private:
  struct StateDeleter {
    void operator()(fuzzy_state* state) const;
  };
  std::unique_ptr<fuzzy_state, StateDeleter> state_;
  std::string error_;  // first failure, empty while all is well
};

// Match score of two ssdeep digests, 0 (no match) .. 100, as fuzzy_compare /
// `ssdeep -k` computes it. A malformed digest is a parse_error.
Result<int> ssdeep_compare(std::string_view a, std::string_view b);

}  // namespace hashsieve::digest
