// What hashing found about each entry of a layer (the per-layer facts), and
// their encoding for the store's cache.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/tlsh.h"
#include "hashsieve/image/layer_entries.h"
#include "hashsieve/refset/section_digests.h"
#include "hashsieve/store/store.h"

namespace hashsieve::scan {

// Version of the facts encoding itself (what encode_facts writes).
inline constexpr std::string_view kFactsFormatVersion = "facts/2";

struct FileRecord {
  std::string path;
  image::EntryKind kind = image::EntryKind::regular;
  std::uint64_t size = 0;
  std::uint32_t mode = 0;
  std::string link_target;
  digest::CryptoDigests crypto;  // regular files: every field set
  std::vector<digest::Sdbf> sdbf;
  std::optional<digest::TlshDigest> tlsh;
  std::optional<std::string> ssdeep;
  // refset::sample_content_keys of the bytes (sorted, unique): lets sets with
  // a similarity index find SDBF candidates without a full scan. Empty for
  // streamed large files (the keys need the whole file in memory).
  std::vector<std::uint32_t> content_keys;
  // See store::FileFacts::similarity_computed: false when the sieve skipped
  // the similarity digests because the file was known when it was hashed.
  bool similarity_computed = false;
  // refset::rodata_digests of the bytes, for ELF files whose similarity
  // digests were computed from memory (streamed large files have none).
  std::optional<refset::SectionDigests> rodata;
};

// The cache-key part naming every hasher and its version, e.g.
// "crypto/1;sdbf/sdhash-3.4;tlsh/tlsh-3.4.4-compatible/1;ssdeep/libfuzzy-2.14;
// content-keys/64.3.6;rodata/1;facts/2". Adding the .rodata digests changed
// it (rodata/1, facts/2), so facts cached before them are recomputed.
std::string hasher_versions();

store::FileFacts encode_facts(const FileRecord& record);
// Validates everything: digests must parse, kinds must be known. A bad field
// is a parse_error naming the path and the field.
Result<FileRecord> decode_facts(const store::FileFacts& facts);

}  // namespace hashsieve::scan
