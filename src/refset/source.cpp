#include "hashsieve/refset/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "hashsieve/core/file.h"
#include "source_internal.h"

namespace hashsieve::refset {

Status SourceSink::on_product(const SourceProduct&) { return {}; }
void SourceSink::on_warning(Warning) {}

std::string_view to_string(SourceFormat format) {
  switch (format) {
    case SourceFormat::nsrl_v3: return "nsrl-v3";
    case SourceFormat::nsrl_v2: return "nsrl-v2";
    case SourceFormat::clamav: return "clamav";
    case SourceFormat::virusshare: return "virusshare";
    case SourceFormat::hashlist: return "hashlist";
  }
  return "unknown";
}

Result<SourceFormat> parse_source_format(std::string_view text) {
  for (auto f : {SourceFormat::nsrl_v3, SourceFormat::nsrl_v2, SourceFormat::clamav,
                 SourceFormat::virusshare, SourceFormat::hashlist}) {
    if (detail::iequals(text, to_string(f))) return f;
  }
  return Error(ErrorCode::invalid_argument,
               "unknown source format '" + std::string(text) +
                   "' (expected nsrl-v3, nsrl-v2, clamav, virusshare or hashlist)");
}

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> match_suspicious_category(std::string_view category,
                                                     const SourceOptions& options) {
  for (const auto& s : options.suspicious.substrings) {
    // An empty pattern would mark every product suspicious: ignore it.
    if (!s.empty() && icontains(category, s)) return s;
  }
  return std::nullopt;
}

bool is_suspicious_category(std::string_view category, const SourceOptions& options) {
  return match_suspicious_category(category, options).has_value();
}

Result<SourceStats> read_source(SourceFormat format, const std::string& path, SourceSink& sink,
                                const SourceOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(errno, path);
  if (S_ISDIR(st.st_mode)) return Error(ErrorCode::invalid_argument, path + ": is a directory");
  if (!S_ISREG(st.st_mode)) return Error(ErrorCode::unsupported, path + ": not a regular file");

  detail::ReadContext ctx(sink, options);
  Result<SourceStats> result = [&]() -> Result<SourceStats> {
    switch (format) {
      case SourceFormat::nsrl_v3: return detail::read_nsrl_v3(path, ctx);
      case SourceFormat::nsrl_v2: return detail::read_nsrl_v2(path, ctx);
      case SourceFormat::clamav: return detail::read_clamav(path, ctx);
      case SourceFormat::virusshare: return detail::read_virusshare(path, ctx);
      case SourceFormat::hashlist: return detail::read_hashlist(path, ctx);
    }
    return Error(ErrorCode::internal, "unknown source format");
  }();
  if (!result.ok()) {
    return std::move(result).error().with_context("reading " + path + " as " +
                                                  std::string(to_string(format)));
  }
  ctx.report();
  return result;
}

namespace detail {

// --- LineReader --------------------------------------------------------------

namespace {
constexpr std::size_t kBufferSize = 1 << 20;
constexpr std::size_t kHeadSize = 4096;
}  // namespace

Result<LineReader> LineReader::open(const std::string& path) {
  LineReader r;
  r.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r.fd_ < 0) return errno_error(errno, path);
  struct stat st {};
  if (::fstat(r.fd_, &st) == 0) r.file_size_ = static_cast<std::uint64_t>(st.st_size);
  r.buf_ = std::make_unique<char[]>(kBufferSize);
  r.fill();
  if (r.error_) return *r.error_;
  r.head_.assign(r.buf_.get(), std::min(r.end_, kHeadSize));
  return r;
}

LineReader::LineReader(LineReader&& o) noexcept { *this = std::move(o); }

LineReader& LineReader::operator=(LineReader&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    buf_ = std::move(o.buf_);
    begin_ = o.begin_;
    end_ = o.end_;
    eof_ = o.eof_;
    overlong_ = o.overlong_;
    skipping_ = o.skipping_;
    line_number_ = o.line_number_;
    consumed_ = o.consumed_;
    file_size_ = o.file_size_;
    head_ = std::move(o.head_);
    error_ = std::move(o.error_);
  }
  return *this;
}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

void LineReader::fill() {
  while (!eof_ && end_ < kBufferSize) {
    const ssize_t n = ::read(fd_, buf_.get() + end_, kBufferSize - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = errno_error(errno, "read");
      eof_ = true;
      return;
    }
    if (n == 0) {
      eof_ = true;
      return;
    }
    end_ += static_cast<std::size_t>(n);
    return;
  }
}

namespace {
std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}
}  // namespace

std::optional<std::string_view> LineReader::next() {
  overlong_ = false;
  for (;;) {
    char* b = buf_.get() + begin_;
    const std::size_t avail = end_ - begin_;
    if (const void* nl = std::memchr(b, '\n', avail)) {
      const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - b);
      begin_ += len + 1;
      consumed_ += len + 1;
      if (skipping_) {  // the tail of an overlong line already reported
        skipping_ = false;
        continue;
      }
      ++line_number_;
      return strip_cr({b, len});
    }
    if (skipping_) {
      consumed_ += avail;
      begin_ = end_ = 0;
      if (eof_) return std::nullopt;
      fill();
      continue;
    }
    if (avail >= kMaxLine) {
      ++line_number_;
      overlong_ = true;
      skipping_ = true;
      begin_ += kMaxLine;
      consumed_ += kMaxLine;
      return std::string_view(b, kMaxLine);
    }
    if (eof_) {
      if (avail == 0) return std::nullopt;
      begin_ = end_;
      consumed_ += avail;
      ++line_number_;
      return strip_cr({b, avail});
    }
    std::memmove(buf_.get(), b, avail);
    begin_ = 0;
    end_ = avail;
    fill();
  }
}

// --- TextSniffer -------------------------------------------------------------

bool starts_with_sqlite_magic(std::string_view head) {
  static constexpr std::string_view kMagic("SQLite format 3\0", 16);
  return head.substr(0, kMagic.size()) == kMagic;
}

Status TextSniffer::check_head(const LineReader& reader) const {
  const std::string_view head = reader.head();
  if (head.empty()) return Error(ErrorCode::parse_error, "empty file, expected " + what_);
  if (starts_with_sqlite_magic(head)) {
    return Error(ErrorCode::parse_error,
                 "this is an SQLite database, not " + what_ + " (an NSRL RDS v3 set? use nsrl-v3)");
  }
  if (head.find('\0') != std::string_view::npos) {
    return Error(ErrorCode::parse_error, "binary data (NUL bytes); does not look like " + what_);
  }
  return {};
}

void TextSniffer::good() {
  if (confirmed_) return;
  confirmed_ = true;
  for (auto& w : held_) ctx_.warn(std::move(w));
  held_.clear();
}

Status TextSniffer::bad(std::string message) {
  if (confirmed_) {
    ctx_.warn(std::move(message));
    return {};
  }
  held_.push_back(std::move(message));
  const unsigned limit = ctx_.options().sniff_lines;
  if (limit == 0) {  // sniffing disabled
    good();
    return {};
  }
  if (held_.size() >= limit) return wrong_format("the first " + std::to_string(held_.size()) + " " + unit_ + " are malformed");
  return {};
}

Status TextSniffer::finish() {
  if (confirmed_) return {};
  if (!held_.empty()) {
    return wrong_format(held_.size() == 1 ? "the only one of its " + unit_ + " is malformed"
                                          : "all " + std::to_string(held_.size()) + " " + unit_ + " are malformed");
  }
  ctx_.warn("no " + unit_ + " found");
  return {};
}

Error TextSniffer::wrong_format(const std::string& why) const {
  return Error(ErrorCode::parse_error,
               "does not look like " + what_ + ": " + why + " (" + held_.front() + ")");
}

// --- helpers -----------------------------------------------------------------

std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 48;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (text.size() > kMax) out += "...";
  out += '\'';
  return out;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string to_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<std::int64_t> parse_i64(std::string_view s) {
  const bool neg = !s.empty() && s.front() == '-';
  if (neg) s.remove_prefix(1);
  const auto u = parse_u64(s);
  if (!u || *u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return neg ? -static_cast<std::int64_t>(*u) : static_cast<std::int64_t>(*u);
}

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

namespace {

struct HexTable {
  std::uint8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = 0xFF;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<std::uint8_t>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<std::uint8_t>(10 + i);
      v['A' + i] = static_cast<std::uint8_t>(10 + i);
    }
  }
};
constexpr HexTable kHexTable;

}  // namespace

bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t bytes) {
  if (text.size() != 2 * bytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  unsigned bad = 0;  // collects the 0xF0 bits that only invalid digits carry
  for (std::size_t i = 0; i < bytes; ++i) {
    const unsigned hi = kHexTable.v[p[2 * i]];
    const unsigned lo = kHexTable.v[p[2 * i + 1]];
    bad |= hi | lo;
    out[i] = static_cast<std::uint8_t>(hi << 4 | (lo & 0xF));
  }
  return (bad & 0xF0) == 0;
}

std::optional<Crc32> parse_crc32(std::string_view text) {
  std::uint8_t b[4];
  if (!decode_hex(text, b, 4)) return std::nullopt;
  return Crc32(std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3]);
}

bool set_digest_by_length(std::string_view hex, SourceRow& row) {
  switch (hex.size()) {
    case Md5Digest::kHexDigits: row.md5 = parse_digest<Md5Digest>(hex); return row.md5.has_value();
    case Sha1Digest::kHexDigits: row.sha1 = parse_digest<Sha1Digest>(hex); return row.sha1.has_value();
    case Sha256Digest::kHexDigits: row.sha256 = parse_digest<Sha256Digest>(hex); return row.sha256.has_value();
    default: return false;
  }
}

void add_category(SourceProduct& product, std::string_view category) {
  if (category.empty()) return;
  std::string utf8 = to_utf8(category);
  auto& cats = product.categories;
  const auto it = std::lower_bound(cats.begin(), cats.end(), utf8);
  if (it == cats.end() || *it != utf8) cats.insert(it, std::move(utf8));
}

void classify_product(SourceProduct& product, const SourceOptions& options) {
  product.suspicious_category.clear();
  product.suspicious_pattern.clear();
  for (const auto& c : product.categories) {
    if (auto m = match_suspicious_category(c, options)) {
      product.suspicious_category = c;
      product.suspicious_pattern = std::move(*m);
      return;
    }
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace detail
}  // namespace hashsieve::refset
