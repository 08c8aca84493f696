// Shared machinery of the source readers: the per-read context (sink, stats,
// progress), a chunked line reader, the wrong-format sniffer for text formats,
// and small parsing helpers.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/refset/source.h"

namespace hashsieve::refset::detail {

// Counts what goes to the sink and drives the progress callback.
class ReadContext {
 public:
  ReadContext(SourceSink& sink, const SourceOptions& options) : sink_(sink), options_(options) {}

  const SourceOptions& options() const { return options_; }
  SourceStats& stats() { return stats_; }

  void warn(std::string message) {
    ++stats_.warnings;
    sink_.on_warning(Warning{std::move(message)});
  }
  Status product(const SourceProduct& product) {
    ++stats_.products;
    return sink_.on_product(product);
  }
  Status row(const SourceRow& row) {
    ++stats_.rows;
    if (options_.progress && stats_.rows % every() == 0) report();
    return sink_.on_row(row);
  }
  void set_bytes(std::uint64_t done) { stats_.bytes_read = done; }
  void set_totals(std::optional<std::uint64_t> bytes_total, std::optional<std::uint64_t> rows_estimate) {
    bytes_total_ = bytes_total;
    rows_estimate_ = rows_estimate;
  }
  void report() {
    if (options_.progress) {
      options_.progress(SourceProgress{stats_.rows, stats_.bytes_read, bytes_total_, rows_estimate_});
    }
  }

 private:
  std::uint64_t every() const { return options_.progress_every_rows ? options_.progress_every_rows : 1; }

  SourceSink& sink_;
  const SourceOptions& options_;
  SourceStats stats_;
  std::optional<std::uint64_t> bytes_total_;
  std::optional<std::uint64_t> rows_estimate_;
};

// Reads a file line by line in large chunks. Lines are returned without their
// LF or CR LF. A line longer than kMaxLine is returned truncated with
// `overlong` set, and the rest of it is skipped, so a binary file cannot make
// the reader buffer without bound.
class LineReader {
 public:
  static constexpr std::size_t kMaxLine = 1 << 16;

  static Result<LineReader> open(const std::string& path);
  LineReader(LineReader&&) noexcept;
  LineReader& operator=(LineReader&&) noexcept;
  ~LineReader();

  // Next line, or nullopt at end of file (or on a read error: check error()).
  std::optional<std::string_view> next();
  bool overlong() const { return overlong_; }
  std::uint64_t line_number() const { return line_number_; }
  std::uint64_t bytes_consumed() const { return consumed_; }
  std::uint64_t file_size() const { return file_size_; }
  // The first bytes of the file (up to 4 KiB), read at open, for sniffing.
  std::string_view head() const { return head_; }
  const std::optional<Error>& error() const { return error_; }

 private:
  LineReader() = default;
  void fill();

  int fd_ = -1;
  std::unique_ptr<char[]> buf_;
  std::size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  bool overlong_ = false;
  bool skipping_ = false;  // discarding the tail of an overlong line
  std::uint64_t line_number_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t file_size_ = 0;
  std::string head_;
  std::optional<Error> error_;
};

// Wrong-format detection for line formats. Until the first good data line,
// warnings are held back; if `sniff_lines` malformed lines come first, or the
// file ends before any good one, the file is rejected. Once a good line is
// seen, held warnings are released in order and later ones pass straight on.
class TextSniffer {
 public:
  // `what` names the expected format with its article ("a ClamAV .hdb/.hsb
  // file"); `unit` what is counted ("data lines", "FILE rows").
  TextSniffer(ReadContext& ctx, std::string_view what, std::string_view unit = "data lines")
      : ctx_(ctx), what_(what), unit_(unit) {}

  // Checks the file's head: empty, binary (NUL bytes), an SQLite database.
  Status check_head(const LineReader& reader) const;
  void good();
  // Returns an error when the file is now judged to be in the wrong format.
  Status bad(std::string message);
  // At end of file.
  Status finish();

 private:
  Error wrong_format(const std::string& why) const;

  ReadContext& ctx_;
  std::string what_;
  std::string unit_;
  bool confirmed_ = false;
  std::vector<std::string> held_;
};

// Shows user data in a warning: at most 48 bytes, control and non-ASCII bytes
// escaped as \xNN, wrapped in single quotes.
std::string quote(std::string_view text);

// File names from the sources are mostly UTF-8, but NSRL v2 names are not
// always. Valid UTF-8 is kept as is; anything else is taken as Latin-1 and
// transcoded, so every name is valid UTF-8 (reports are JSON) and no byte is
// lost: the original bytes are recoverable by transcoding back.
std::string to_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view bytes);

std::string_view trim(std::string_view s);
std::optional<std::uint64_t> parse_u64(std::string_view s);
std::optional<std::int64_t> parse_i64(std::string_view s);
bool is_hex(std::string_view s);

// Hex decoding for the hot paths. HashDigest::parse_hex decides each digit
// with branches that mispredict on random hex (43% of an nsrl-v3 read in a
// profile); this uses a table and checks validity once per digest. Same rules:
// exactly 2*N digits, either case, nothing else.
bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t bytes);

template <typename D>
std::optional<D> parse_digest(std::string_view text) {
  std::array<std::uint8_t, D::kBytes> b;
  if (text.size() != 2 * D::kBytes || !decode_hex(text, b.data(), b.size())) return std::nullopt;
  return D(b);
}
std::optional<Crc32> parse_crc32(std::string_view text);

// Sets the digest field of `row` that matches the length of `hex` (32 MD5, 40
// SHA-1, 64 SHA-256). Returns false for any other length or a non-hex digit.
bool set_digest_by_length(std::string_view hex, SourceRow& row);

bool starts_with_sqlite_magic(std::string_view head);

// Adds `category` (as UTF-8) to the product's sorted category list unless it
// is already there. Compared case-sensitively: categories are shown as found.
void add_category(SourceProduct& product, std::string_view category);
// Fills suspicious_category/suspicious_pattern from the categories.
void classify_product(SourceProduct& product, const SourceOptions& options);
bool iequals(std::string_view a, std::string_view b);

// Per-format readers; `path` has been checked to name a readable file.
Result<SourceStats> read_nsrl_v3(const std::string& path, ReadContext& ctx);
Result<SourceStats> read_nsrl_v2(const std::string& path, ReadContext& ctx);
Result<SourceStats> read_clamav(const std::string& path, ReadContext& ctx);
Result<SourceStats> read_virusshare(const std::string& path, ReadContext& ctx);
Result<SourceStats> read_hashlist(const std::string& path, ReadContext& ctx);

}  // namespace hashsieve::refset::detail
