// Reading the SDBF text form (spec section 7).
//
// The reference reader splits on ':' and ignores `namelen`, so a name that
// contains ':' shifts every field and aborts it. We take the name by its
// length instead, and validate every other field strictly: digest files come
// from untrusted images and caches, so a malformed line must give an error that
// says what is wrong, never a crash or a huge allocation.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "base64.h"
#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {
namespace {

// Base64 length of one 256-byte filter: 4 * ceil(256 / 3).
constexpr std::size_t kFilterBase64Chars = 344;

Error parse_error(std::string message) { return Error(ErrorCode::parse_error, std::move(message)); }

// Quotes a field for an error message: short, and with control bytes escaped so
// a binary line cannot garble a terminal.
std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 24;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

// A forward-only reader over one line.
class Cursor {
 public:
  explicit Cursor(std::string_view line) : line_(line) {}

  std::size_t remaining() const { return line_.size() - pos_; }
  bool at_end() const { return pos_ == line_.size(); }
  std::string_view rest() const { return line_.substr(pos_); }

  // The text up to the next ':', which is consumed. A missing ':' means the
  // line ended before the field's terminator: the line is truncated.
  Result<std::string_view> field(const char* what) {
    const std::size_t colon = line_.find(':', pos_);
    if (colon == std::string_view::npos) {
      return parse_error(std::string("truncated line: no ':' after ") + what);
    }
    std::string_view f = line_.substr(pos_, colon - pos_);
    pos_ = colon + 1;
    return f;
  }

  std::string_view take(std::size_t n) {
    std::string_view f = line_.substr(pos_, n);
    pos_ += f.size();
    return f;
  }

  bool skip_colon() {
    if (at_end() || line_[pos_] != ':') return false;
    ++pos_;
    return true;
  }

 private:
  std::string_view line_;
  std::size_t pos_ = 0;
};

// Unsigned decimal, digits only (no sign, no blanks), at most `max`.
Result<std::uint64_t> parse_decimal(std::string_view text, const char* what, std::uint64_t max) {
  if (text.empty()) return parse_error(std::string("empty ") + what);
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return parse_error(std::string("non-numeric ") + what + " " + quote(text));
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (max - digit) / 10) return parse_error(std::string(what) + " " + quote(text) + " out of range");
    v = v * 10 + digit;
  }
  return v;
}

// Hexadecimal block element count (the reference prints "%02x").
Result<std::uint32_t> parse_hex_count(std::string_view text, std::size_t block) {
  const std::string where = "block " + std::to_string(block) + " element count ";
  if (text.empty()) return parse_error(where + "is empty");
  if (text.size() > 4) return parse_error(where + quote(text) + " out of range");
  std::uint32_t v = 0;
  for (const char c : text) {
    std::uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return parse_error(where + quote(text) + " is not hexadecimal");
    }
    v = v * 16 + digit;
  }
  if (v > kSdbfBlockMaxElements) {
    return parse_error(where + std::to_string(v) + " exceeds the maximum " +
                       std::to_string(kSdbfBlockMaxElements));
  }
  return v;
}

Status expect_literal(Cursor& cur, const char* what, std::string_view want) {
  auto f = cur.field(what);
  if (!f) return std::move(f).error();
  if (*f != want) {
    return parse_error(std::string("unsupported ") + what + " " + quote(*f) + ", expected '" +
                       std::string(want) + "'");
  }
  return {};
}

Status expect_number(Cursor& cur, const char* what, std::uint64_t want) {
  auto f = cur.field(what);
  if (!f) return std::move(f).error();
  auto v = parse_decimal(*f, what, 0xFFFFFFFFu);
  if (!v) return std::move(v).error();
  if (*v != want) {
    return parse_error(std::string("unsupported ") + what + " " + std::to_string(*v) + ", expected " +
                       std::to_string(want));
  }
  return {};
}

// Decodes `text` (Base64 of `want_bytes` bytes) and appends it to `words` as
// little-endian u64 words.
Status decode_filters(std::string_view text, std::size_t want_bytes, std::vector<std::uint64_t>& words,
                      std::vector<std::uint8_t>& scratch, const std::string& what) {
  scratch.clear();
  if (!base64_decode_append(text, scratch)) return parse_error("invalid base64 in " + what);
  if (scratch.size() != want_bytes) {
    return parse_error(what + " decodes to " + std::to_string(scratch.size()) + " bytes, expected " +
                       std::to_string(want_bytes));
  }
  const std::size_t first = words.size();
  words.resize(first + want_bytes / 8);
  // Filter bytes are stored in file order; on little-endian hosts the word
  // view is the same memory, which is what Sdbf expects.
  std::memcpy(words.data() + first, scratch.data(), want_bytes);
  return {};
}

Result<Sdbf> parse_stream_tail(Cursor& cur, std::string name, std::uint64_t size) {
  auto count_f = cur.field("filter count");
  if (!count_f) return std::move(count_f).error();
  auto count = parse_decimal(*count_f, "filter count", ~std::uint64_t{0});
  if (!count) return std::move(count).error();
  if (*count == 0) return parse_error("filter count is 0");
  auto last_f = cur.field("last filter element count");
  if (!last_f) return std::move(last_f).error();
  auto last = parse_decimal(*last_f, "last filter element count", ~std::uint64_t{0});
  if (!last) return std::move(last).error();
  if (*last > kSdbfStreamMaxElements) {
    return parse_error("last filter element count " + std::to_string(*last) + " exceeds the maximum " +
                       std::to_string(kSdbfStreamMaxElements));
  }
  // Check the count against the payload actually present before computing or
  // allocating anything from it: every filter needs more than 341 characters.
  const std::size_t have = cur.remaining();
  if (*count > have / (kFilterBase64Chars - 3) + 1) {
    return parse_error("filter count " + std::to_string(*count) + " inconsistent with a payload of " +
                       std::to_string(have) + " characters");
  }
  const std::size_t bytes = static_cast<std::size_t>(*count) * kSdbfFilterBytes;
  const std::size_t want = 4 * ((bytes + 2) / 3);
  if (have < want) {
    return parse_error("truncated payload: " + std::to_string(have) + " characters, filter count " +
                       std::to_string(*count) + " needs " + std::to_string(want));
  }
  if (have > want) {
    return parse_error("trailing garbage: " + std::to_string(have - want) +
                       " characters after the payload of " + std::to_string(*count) + " filters");
  }
  std::vector<std::uint64_t> words;
  words.reserve(bytes / 8);
  std::vector<std::uint8_t> scratch;
  scratch.reserve(bytes);
  if (auto st = decode_filters(cur.take(want), bytes, words, scratch, "payload"); !st) {
    return std::move(st).error();
  }
  return Sdbf::from_stream(std::move(name), size, std::move(words), static_cast<std::uint32_t>(*last));
}

Result<Sdbf> parse_block_tail(Cursor& cur, std::string name, std::uint64_t size) {
  auto count_f = cur.field("block count");
  if (!count_f) return std::move(count_f).error();
  auto count = parse_decimal(*count_f, "block count", ~std::uint64_t{0});
  if (!count) return std::move(count).error();
  if (*count == 0) return parse_error("block count is 0");
  auto bs_f = cur.field("block size");
  if (!bs_f) return std::move(bs_f).error();
  auto block_size = parse_decimal(*bs_f, "block size", 0xFFFFFFFFu);
  if (!block_size) return std::move(block_size).error();
  if (*block_size == 0) return parse_error("block size is 0");
  // Each block takes at least "c:" + 344 characters + a separator.
  const std::size_t have = cur.remaining();
  if (*count > (have + 1) / (kFilterBase64Chars + 3)) {
    return parse_error("block count " + std::to_string(*count) + " inconsistent with a payload of " +
                       std::to_string(have) + " characters");
  }
  const auto n = static_cast<std::size_t>(*count);
  std::vector<std::uint64_t> words;
  words.reserve(n * kSdbfFilterWords);
  std::vector<std::uint16_t> counts;
  counts.reserve(n);
  std::vector<std::uint8_t> scratch;
  scratch.reserve(kSdbfFilterBytes + 2);
  for (std::size_t b = 0; b < n; ++b) {
    const std::string what = "block " + std::to_string(b);
    auto cnt_f = cur.field((what + " element count").c_str());
    if (!cnt_f) return std::move(cnt_f).error();
    auto cnt = parse_hex_count(*cnt_f, b);
    if (!cnt) return std::move(cnt).error();
    const std::string_view b64 = cur.take(kFilterBase64Chars);
    if (b64.size() < kFilterBase64Chars) {
      return parse_error("truncated line: " + what + " filter has " + std::to_string(b64.size()) +
                         " of " + std::to_string(kFilterBase64Chars) + " characters");
    }
    if (b64.find(':') != std::string_view::npos) {
      return parse_error("invalid base64 in " + what + " filter (contains ':')");
    }
    if (auto st = decode_filters(b64, kSdbfFilterBytes, words, scratch, what + " filter"); !st) {
      return std::move(st).error();
    }
    counts.push_back(static_cast<std::uint16_t>(*cnt));
    if (b + 1 < n && !cur.skip_colon()) {
      if (cur.at_end()) {
        return parse_error("truncated line: " + std::to_string(b + 1) + " of " + std::to_string(n) +
                           " blocks present");
      }
      return parse_error("garbage after " + what + " filter: " + quote(cur.rest()));
    }
  }
  if (!cur.at_end()) {
    return parse_error("trailing garbage after the last block: " + quote(cur.rest()));
  }
  return Sdbf::from_blocks(std::move(name), size, static_cast<std::uint32_t>(*block_size), std::move(words),
                           std::move(counts));
}

}  // namespace

Result<Sdbf> parse_sdbf(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (line.empty()) return parse_error("empty line");
  Cursor cur(line);

  auto magic = cur.field("magic");
  if (!magic) return parse_error("wrong magic " + quote(line) + ", expected 'sdbf' or 'sdbf-dd'");
  SdbfKind kind;
  if (*magic == "sdbf") {
    kind = SdbfKind::stream;
  } else if (*magic == "sdbf-dd") {
    kind = SdbfKind::block;
  } else {
    return parse_error("wrong magic " + quote(*magic) + ", expected 'sdbf' or 'sdbf-dd'");
  }
  auto version = cur.field("version");
  if (!version) return std::move(version).error();
  if (*version != "03") return parse_error("unsupported version " + quote(*version) + ", expected '03'");

  auto namelen_f = cur.field("name length");
  if (!namelen_f) return std::move(namelen_f).error();
  auto namelen = parse_decimal(*namelen_f, "name length", ~std::uint64_t{0});
  if (!namelen) return std::move(namelen).error();
  if (*namelen > cur.remaining()) {
    return parse_error("bad name length " + std::to_string(*namelen) + ": the name runs past the end of the line");
  }
  std::string name(cur.take(static_cast<std::size_t>(*namelen)));
  if (!cur.skip_colon()) {
    return parse_error("bad name length " + std::to_string(*namelen) + ": name " + quote(name) +
                       " is not followed by ':'");
  }

  auto size_f = cur.field("input size");
  if (!size_f) return std::move(size_f).error();
  auto size = parse_decimal(*size_f, "input size", ~std::uint64_t{0});
  if (!size) return std::move(size).error();

  if (auto st = expect_literal(cur, "hash", "sha1"); !st) return std::move(st).error();
  if (auto st = expect_number(cur, "filter size", kSdbfFilterBytes); !st) return std::move(st).error();
  if (auto st = expect_number(cur, "hash count", 5); !st) return std::move(st).error();
  if (auto st = expect_literal(cur, "bit mask", "7ff"); !st) return std::move(st).error();
  const std::uint32_t max_elem = kind == SdbfKind::stream ? kSdbfStreamMaxElements : kSdbfBlockMaxElements;
  if (auto st = expect_number(cur, "max elements", max_elem); !st) return std::move(st).error();

  if (kind == SdbfKind::stream) return parse_stream_tail(cur, std::move(name), *size);
  return parse_block_tail(cur, std::move(name), *size);
}

Result<std::vector<Sdbf>> parse_sdbf_lines(std::string_view text) {
  std::vector<Sdbf> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    // The reference stops reading at the first empty line.
    if (line.empty()) break;
    auto d = parse_sdbf(line);
    if (!d) return std::move(d).error().with_context("line " + std::to_string(line_no));
    out.push_back(std::move(d).value());
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace hashsieve::digest
