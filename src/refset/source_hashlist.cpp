// Output of sha256sum, sha1sum and md5sum (GNU coreutils, "cksum output
// modes"), in every form they write:
//   <hex>  name          text mode
//   <hex> *name          binary mode
//   \<hex>  a\nb\\c      a leading backslash: the name has \\, \n, \r escaped
//   SHA256 (name) = hex  BSD --tag form (MD5, SHA1, SHA256; also with a leading \)
// and bare hex lines. The algorithm comes from the hex length (32 MD5, 40
// SHA-1, 64 SHA-256); a list may mix them. Rows carry no class: what the list
// means is the importer's choice.
#include "source_internal.h"

namespace hashsieve::refset::detail {

namespace {

std::size_t hex_prefix(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && is_hex(s.substr(i, 1))) ++i;
  return i;
}

bool is_digest_length(std::size_t n) {
  return n == Md5Digest::kHexDigits || n == Sha1Digest::kHexDigits || n == Sha256Digest::kHexDigits;
}

std::optional<std::size_t> tag_hex_length(std::string_view tag) {
  if (iequals(tag, "MD5")) return Md5Digest::kHexDigits;
  if (iequals(tag, "SHA1")) return Sha1Digest::kHexDigits;
  if (iequals(tag, "SHA256") || iequals(tag, "SHA2-256")) return Sha256Digest::kHexDigits;
  return std::nullopt;
}

// Undoes coreutils' name escaping; false on an escape it never writes.
bool unescape(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (++i == in.size()) return false;
    switch (in[i]) {
      case '\\': out += '\\'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      default: return false;
    }
  }
  return true;
}

}  // namespace

Result<SourceStats> read_hashlist(const std::string& path, ReadContext& ctx) {
  auto opened = LineReader::open(path);
  if (!opened) return std::move(opened).error();
  LineReader& in = *opened;
  ctx.set_totals(in.file_size(), std::nullopt);
  TextSniffer sniff(ctx, "a sha256sum/sha1sum/md5sum hash list");
  if (Status s = sniff.check_head(in); !s) return std::move(s).error();

  std::string name;
  while (auto line = in.next()) {
    std::string_view text = *line;
    if (trim(text).empty() || text.front() == '#') continue;
    ctx.set_bytes(in.bytes_consumed());
    const std::string at = "line " + std::to_string(in.line_number()) + ": ";
    const bool escaped = text.front() == '\\';
    if (escaped) text.remove_prefix(1);

    std::string_view hex, raw_name;
    std::string problem;
    const std::size_t h = hex_prefix(text);
    if (is_digest_length(h) && (text.size() == h || (text.size() > h + 1 && text[h] == ' ' &&
                                                      (text[h + 1] == ' ' || text[h + 1] == '*')))) {
      hex = text.substr(0, h);
      raw_name = text.size() == h ? std::string_view() : text.substr(h + 2);
    } else if (const auto open = text.find(" ("), close = text.rfind(") = ");
               open != std::string_view::npos && open > 0 && close != std::string_view::npos &&
               close >= open + 2) {
      const std::string_view tag = text.substr(0, open);
      raw_name = text.substr(open + 2, close - open - 2);
      hex = text.substr(close + 4);
      const auto want = tag_hex_length(tag);
      if (!want) {
        problem = "unsupported algorithm " + quote(tag) + " (MD5, SHA1 and SHA256 are)";
      } else if (hex.size() != *want || !is_hex(hex)) {
        problem = "bad " + std::string(tag) + " digest " + quote(hex);
      }
    } else if (h > 0 && !is_digest_length(h) && (h == text.size() || text[h] == ' ')) {
      problem = "bad digest " + quote(text.substr(0, h)) + " (expected 32, 40 or 64 hex digits)";
    } else {
      problem = "not a checksum line: " + quote(*line);
    }
    if (problem.empty() && escaped && !unescape(raw_name, name)) problem = "bad escape in name " + quote(raw_name);
    if (problem.empty() && !escaped) name.assign(raw_name);

    SourceRow row;
    if (problem.empty() && !set_digest_by_length(hex, row)) problem = "bad digest " + quote(hex);
    if (!problem.empty()) {
      if (Status s = sniff.bad(at + problem); !s) return std::move(s).error();
      continue;
    }
    sniff.good();
    row.name = to_utf8(name);
    if (Status s = ctx.row(row); !s) return std::move(s).error();
  }
  if (in.error()) return *in.error();
  ctx.set_bytes(in.bytes_consumed());
  if (Status s = sniff.finish(); !s) return std::move(s).error();
  return ctx.stats();
}

}  // namespace hashsieve::refset::detail
