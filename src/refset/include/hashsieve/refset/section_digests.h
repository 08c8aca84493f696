// Digests of an ELF file's .rodata section: the second similarity rule of
// docs/detection.md (docs/adr/0012-section-digests.md). Other builds of a
// program keep most of their strings and constant tables when compiler,
// libraries and code change, so SDBF/TLSH/ssdeep of .rodata recognise them
// where whole-file digests, dominated by code, do not.
//
// `refset build` computes them for every reference (similarity.rodata.*
// files), the scan's layer hasher for every file it similarity-digests; both
// call rodata_digests(), so references and queries are digested alike (and
// the calibration bench digests with the same section reader and
// compute_digests).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/tlsh.h"

namespace hashsieve::refset {

inline constexpr const char* kRodataSection = ".rodata";
// Names the digests in layer-facts cache keys (scan::hasher_versions):
// change it whenever what rodata_digests computes changes.
inline constexpr const char* kRodataDigestsVersion = "rodata/1";

struct SectionDigests {
  std::uint64_t size = 0;            // bytes of the section(s), for the size gate
  std::vector<digest::Sdbf> sdbf;    // empty below 512 bytes
  std::optional<digest::TlshDigest> tlsh;
  std::optional<std::string> ssdeep;
  bool operator==(const SectionDigests& o) const;
};

// The .rodata digests of `bytes` (every section named .rodata, concatenated
// in table order, as `similarity_scores --sections .rodata`). nullopt when
// `bytes` is not ELF, has no section table or no non-empty .rodata.
// Errors: a malformed ELF header or section table (parse_error naming the
// field, from digest::find_elf_sections).
Result<std::optional<SectionDigests>> rodata_digests(const std::string& name, std::span<const std::uint8_t> bytes);

}  // namespace hashsieve::refset
