// ClamAV hash signatures (docs.clamav.net, Signatures/HashSignatures):
//   .hdb  MD5:FileSize:MalwareName[:MinFL[:MaxFL]]
//   .hsb  HashString:FileSize:MalwareName[:MinFL[:MaxFL]]   (SHA-1 or SHA-256)
// The digest kind comes from the hex length, so one reader serves both (and
// the .fp/.sfp allow lists, which reuse the layout). A FileSize of '*' (size
// unknown) is only valid with a minimum functionality level of 73 or more;
// ClamAV rejects it otherwise, and so do we (as a warning). The malware name
// becomes the row name; every row is malicious.
#include <algorithm>

#include "source_internal.h"

namespace hashsieve::refset::detail {

namespace {

constexpr std::uint64_t kStarSizeMinLevel = 73;

// Splits on ':' into at most `max` fields; returns the count, or max + 1 when
// there are more.
std::size_t split_colons(std::string_view text, std::string_view* out, std::size_t max) {
  std::size_t n = 0;
  for (;;) {
    const auto colon = text.find(':');
    if (n == max) return max + 1;
    out[n++] = text.substr(0, colon);
    if (colon == std::string_view::npos) return n;
    text.remove_prefix(colon + 1);
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<SourceStats> read_clamav(const std::string& path, ReadContext& ctx) {
  auto opened = LineReader::open(path);
  if (!opened) return std::move(opened).error();
  LineReader& in = *opened;
  ctx.set_totals(in.file_size(), std::nullopt);
  TextSniffer sniff(ctx, "a ClamAV .hdb/.hsb hash signature file");
  if (Status s = sniff.check_head(in); !s) return std::move(s).error();

  while (auto line = in.next()) {
    const std::string_view text = trim(*line);
    if (text.empty() || text.front() == '#') continue;
    ctx.set_bytes(in.bytes_consumed());
    const std::string at = "line " + std::to_string(in.line_number()) + ": ";

    std::string_view f[5];
    const std::size_t n = split_colons(text, f, 5);
    std::string problem;
    SourceRow row;
    row.class_override = ReferenceClass::malicious;
    if (n < 3 || n > 5) {
      problem = "expected HASH:SIZE:NAME[:FLEVEL], found " + (n > 5 ? std::string("more than 5") : std::to_string(n)) +
                " field" + (n == 1 ? "" : "s") + " in " + quote(text);
    } else if (!set_digest_by_length(f[0], row)) {
      if (all_digits(f[0]) && is_hex(f[1]) && f[1].size() >= Md5Digest::kHexDigits) {
        problem = "PE section signature (.mdb/.msb SIZE:HASH:NAME), not a whole-file hash: " + quote(text);
      } else {
        problem = "bad hash " + quote(f[0]) + " (expected 32, 40 or 64 hex digits)";
      }
    } else if (f[2].empty()) {
      problem = "empty malware name";
    } else {
      std::optional<std::uint64_t> min_level;
      if (n >= 4) {
        min_level = parse_u64(f[3]);
        if (!min_level) problem = "bad functionality level " + quote(f[3]);
      }
      if (n == 5 && problem.empty() && !parse_u64(f[4])) {
        problem = "bad maximum functionality level " + quote(f[4]);
      }
      if (problem.empty()) {
        if (f[1] == "*") {
          if (!min_level || *min_level < kStarSizeMinLevel) {
            problem = "size '*' requires a minimum functionality level of 73 or more (ClamAV rejects " +
                      quote(text) + ")";
          }
        } else if (auto size = parse_u64(f[1])) {
          row.size = size;
        } else {
          problem = "bad file size " + quote(f[1]);
        }
      }
    }
    if (!problem.empty()) {
      if (Status s = sniff.bad(at + problem); !s) return std::move(s).error();
      continue;
    }
    sniff.good();
    row.name = to_utf8(f[2]);
    if (Status s = ctx.row(row); !s) return std::move(s).error();
  }
  if (in.error()) return *in.error();
  ctx.set_bytes(in.bytes_consumed());
  if (Status s = sniff.finish(); !s) return std::move(s).error();
  return ctx.stats();
}

}  // namespace hashsieve::refset::detail
