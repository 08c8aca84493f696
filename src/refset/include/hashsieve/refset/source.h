// Streaming readers for the reference-set source formats: NSRL RDS v3 (SQLite),
// NSRL RDS 2.x text files, ClamAV .hdb/.hsb hash signatures, VirusShare MD5
// lists and sha256sum/sha1sum/md5sum output.
//
// A reader pushes what it finds into a SourceSink as it goes (products first,
// then rows) and holds no rows itself, so a billion-row RDS imports in bounded
// memory. Problems with single rows become Warnings naming the line or row
// ("line 17: bad MD5 'xyz'") and the read goes on; problems with the whole
// input (missing file, wrong format, corrupt database) are Errors. A file in the
// wrong format is an error, never a silent zero-row import.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/refset/reference_class.h"

namespace hashsieve::refset {

using digest::Crc32;
using digest::Md5Digest;
using digest::Sha1Digest;
using digest::Sha256Digest;

enum class SourceFormat : unsigned char {
  nsrl_v3,     // NSRL RDS v3 SQLite database (minimal or full layout)
  nsrl_v2,     // NSRL RDS 2.x NSRLFile.txt (+ NSRLProd.txt next to it)
  clamav,      // ClamAV .hdb (MD5) / .hsb (SHA-1, SHA-256) hash signatures
  virusshare,  // VirusShare_NNNNN.md5: '#' comments, one MD5 per line
  hashlist,    // sha256sum/sha1sum/md5sum output, GNU or BSD --tag form
};

// "nsrl-v3", "nsrl-v2", "clamav", "virusshare", "hashlist".
std::string_view to_string(SourceFormat format);
Result<SourceFormat> parse_source_format(std::string_view text);

// A product (NSRL package). Readers that know products emit each one once,
// before any row that refers to it, with all of its application types.
struct SourceProduct {
  std::int64_t id = -1;
  std::string name;
  std::string version;
  // Application types, de-duplicated and sorted (byte order): the order of
  // PKG rows within a package is not meaningful and depends on the query plan.
  std::vector<std::string> categories;
  // The first category that the suspicious-category matcher accepted, and the
  // pattern that accepted it; both empty when the product is not suspicious.
  std::string suspicious_category;
  std::string suspicious_pattern;

  bool operator==(const SourceProduct&) const = default;
};

// One reference row. Fields a format does not carry stay empty.
struct SourceRow {
  std::optional<Md5Digest> md5;
  std::optional<Sha1Digest> sha1;
  std::optional<Sha256Digest> sha256;
  std::optional<Crc32> crc32;
  std::optional<std::uint64_t> size;
  std::string name;              // file name (NSRL, hash lists) or malware name (ClamAV); UTF-8
  std::int64_t product_id = -1;  // -1: no product
  // Set when the row itself says what it is: ClamAV and VirusShare rows are
  // malicious, an NSRL v2 row with SpecialCode M is malicious. Otherwise the
  // importer decides (NSRL: known, or suspicious through the product).
  std::optional<ReferenceClass> class_override;
  std::string special_code;  // NSRL v2 SpecialCode as found ("", "M", "S", ...)

  bool operator==(const SourceRow&) const = default;
};

// Receives what a reader finds. Returning an error from on_product or on_row
// aborts the read; read_source then returns that error.
class SourceSink {
 public:
  virtual ~SourceSink() = default;
  virtual Status on_product(const SourceProduct& product);
  virtual Status on_row(const SourceRow& row) = 0;
  virtual void on_warning(Warning warning);
};

struct SourceProgress {
  std::uint64_t rows_done = 0;
  std::uint64_t bytes_done = 0;                // text formats: bytes consumed so far
  std::optional<std::uint64_t> bytes_total;    // text formats: the file size
  std::optional<std::uint64_t> rows_estimate;  // nsrl-v3: max(rowid) of FILE when it is a table
};
using SourceProgressCallback = std::function<void(const SourceProgress&)>;

// Which NSRL application types mark a product as suspicious. A category
// matches when it contains one of the substrings, compared ASCII
// case-insensitively (as nsrlex matches "Hacker Tool" on NSRLProd.txt). The
// default, {"Hacker Tool", "steg"}, is "contains Hacker Tool" or /steg/i.
struct SuspiciousCategoryMatcher {
  std::vector<std::string> substrings{"Hacker Tool", "steg"};
};

struct SourceOptions {
  SuspiciousCategoryMatcher suspicious;
  // nsrl-v2: the NSRLProd.txt to read; empty means "NSRLProd.txt in the
  // directory of NSRLFile.txt". If it does not exist the read warns and rows
  // carry product codes without product records.
  std::string nsrl_v2_products_path;
  // Text formats: when the first `sniff_lines` data lines are all malformed
  // (or the file ends before a good one), the file is rejected as being in
  // the wrong format instead of importing nothing.
  unsigned sniff_lines = 16;
  SourceProgressCallback progress;              // called every `progress_every_rows` rows and at the end
  std::uint64_t progress_every_rows = 1u << 16;
};

struct SourceStats {
  std::uint64_t rows = 0;      // rows passed to on_row
  std::uint64_t products = 0;  // products passed to on_product
  std::uint64_t warnings = 0;  // warnings passed to on_warning
  std::uint64_t bytes_read = 0;

  bool operator==(const SourceStats&) const = default;
};

// Reads `path` in `format` into `sink`. Errors carry the path.
//
// Rows are not de-duplicated: nsrl-v3 emits one row per FILE row, i.e. one
// per (digest, package), since FILE repeats a digest for every package that
// ships it; nsrl-v2 sets concatenated from CD parts repeat rows too. The index
// builder merges equal digests and the categories of their products.
// Products are emitted before the first row (nsrl-v3 from PKG, nsrl-v2 from
// NSRLProd.txt); other formats have none.
Result<SourceStats> read_source(SourceFormat format, const std::string& path, SourceSink& sink,
                                const SourceOptions& options = {});

// The matcher's verdict on one category: the substring that matched, or
// nullopt.
std::optional<std::string> match_suspicious_category(std::string_view category,
                                                     const SourceOptions& options);
bool is_suspicious_category(std::string_view category, const SourceOptions& options);

}  // namespace hashsieve::refset
