// SDBF similarity digests, byte-compatible with sdhash 3.4 (format version 03).
//
// An Sdbf is a value: a name, the size of the input it was made from, and a
// sequence of 256-byte Bloom filters with their element counts. Stream-mode
// digests ("sdbf") fill filters to 160 features each across the whole input;
// block-mode digests ("sdbf-dd") hold one filter per fixed-size block.
// The behaviour is specified in docs/sdbf.md (copied from the shared spec).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::digest {

inline constexpr std::size_t kSdbfFilterBytes = 256;
inline constexpr std::size_t kSdbfFilterWords = kSdbfFilterBytes / 8;
inline constexpr std::uint32_t kSdbfStreamMaxElements = 160;
inline constexpr std::uint32_t kSdbfBlockMaxElements = 192;
inline constexpr std::uint64_t kSdbfMinInputBytes = 512;
// Name and version of the generator, for cache keys and result provenance.
inline constexpr std::string_view kSdbfHasherName = "sdbf";
inline constexpr std::string_view kSdbfHasherVersion = "sdhash-3.4";

enum class SdbfKind { stream, block };

class Sdbf {
 public:
  // Filters are passed as 32 little-endian 64-bit words per filter, which is
  // the same memory as the 256 filter bytes on the (little-endian) targets we
  // support. `last_count` is the element count of the final filter.
  static Sdbf from_stream(std::string name, std::uint64_t input_size,
                          std::vector<std::uint64_t> filter_words, std::uint32_t last_count);
  static Sdbf from_blocks(std::string name, std::uint64_t input_size, std::uint32_t block_size,
                          std::vector<std::uint64_t> filter_words,
                          std::vector<std::uint16_t> element_counts);

  SdbfKind kind() const { return kind_; }
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  std::uint64_t input_size() const { return input_size_; }
  // Block size in bytes for block digests, 0 for stream digests.
  std::uint32_t block_size() const { return block_size_; }
  // 160 for stream digests, 192 for block digests (the "max elem" field).
  std::uint32_t max_elements() const;

  std::size_t filter_count() const { return element_counts_.size(); }
  const std::uint64_t* filter_words(std::size_t i) const {
    return filter_words_.data() + i * kSdbfFilterWords;
  }
  std::span<const std::uint8_t> filter_bytes(std::size_t i) const {
    return {reinterpret_cast<const std::uint8_t*>(filter_words(i)), kSdbfFilterBytes};
  }
  const std::vector<std::uint64_t>& all_filter_words() const { return filter_words_; }
  // Element count as the comparison sees it (spec 8.1): stream digests report
  // 160 for every filter but the last, which reports last_count.
  std::uint32_t element_count(std::size_t i) const { return element_counts_[i]; }
  // Population count of filter i, precomputed at construction.
  std::uint32_t weight(std::size_t i) const { return weights_[i]; }
  // Stream digests: elements in the last filter. Block digests: same as
  // element_count(filter_count()-1).
  std::uint32_t last_count() const { return element_counts_.empty() ? 0 : element_counts_.back(); }

  bool operator==(const Sdbf& other) const = default;

 private:
  Sdbf() = default;
  void compute_weights();

  std::string name_;
  std::uint64_t input_size_ = 0;
  SdbfKind kind_ = SdbfKind::stream;
  std::uint32_t block_size_ = 0;
  std::vector<std::uint64_t> filter_words_;
  std::vector<std::uint16_t> element_counts_;
  std::vector<std::uint16_t> weights_;
};

// --- text form (spec section 7) -------------------------------------------

// Formats one digest line, terminated by '\n', exactly as sdhash 3.4 prints it.
std::string format_sdbf(const Sdbf& digest);

// Parses one digest line (without or with a trailing '\n'). Unlike the
// reference, the name is taken by its `namelen` field, so names containing ':'
// round-trip. Malformed lines give a parse_error naming the problem.
Result<Sdbf> parse_sdbf(std::string_view line);

// Parses a digest file's contents: one digest per line, stopping at the first
// empty line as the reference does. The error names the 1-based line number.
Result<std::vector<Sdbf>> parse_sdbf_lines(std::string_view text);

// --- comparison (spec section 8) --------------------------------------------

// Similarity score of a pair as sdhash 3.4 computes it for the pair (a, b) as
// presented: 0..100, or -1 when no filter pair was comparable. Where the
// reference aborts on 0/0 (every filter of a multi-filter reference side is
// sparse), this returns -1.
int sdbf_score(const Sdbf& a, const Sdbf& b);

// As sdbf_score, and adds the number of filter-pair comparisons evaluated
// (spec 10's "filter comparisons") to *filter_comparisons.
int sdbf_score_counted(const Sdbf& a, const Sdbf& b, std::uint64_t* filter_comparisons);

}  // namespace hashsieve::digest
