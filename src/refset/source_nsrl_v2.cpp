// NSRL RDS 2.x text files: NSRLFile.txt rows, products from the NSRLProd.txt
// next to it.
//
// Layout: line 1 names the fields, and the reader maps columns by those names,
// so both the 2.x header ("SHA-1","MD5","CRC32","FileName",...) and the
// pre-2.0 one ("SHA-1","FileName","FileSize",...,"MD4","MD5","CRC32",...) work.
// Lines are CSV: strings quoted, doubled quotes inside, commas in names. NSRL
// names sometimes carry a bare '"' inside a quoted field; a quote that is not
// followed by a comma, another quote or the end of the line is kept as a
// literal character instead of failing the line. Records never span lines.
// Older sets are concatenations of per-CD parts that each start with the
// header; repeated header lines are skipped. LF and CR LF are accepted.
//
// Encoding: names that are valid UTF-8 are kept; others are taken as Latin-1
// and transcoded to UTF-8 (see to_utf8), which is what the non-UTF-8 names in
// NSRL sets mostly are, and which loses no byte.
//
// SpecialCode: "M" makes the row malicious; every code ("S" special, ...) is
// kept in SourceRow::special_code.
//
// Products: NSRLProd.txt has one line per (product, OS, language, application
// type); a product's lines are gathered into one SourceProduct with all its
// application types. Products are few (about a million lines at most), so
// they are collected in a map and emitted, ordered by code, before any row.
#include <filesystem>
#include <map>

#include "source_internal.h"

namespace hashsieve::refset::detail {

namespace {

// Parses one CSV record into `fields` (reusing their storage). Returns false
// when a quoted field is not closed before the end of the line.
bool parse_csv(std::string_view line, std::vector<std::string>& fields, std::size_t& count) {
  count = 0;
  std::size_t i = 0;
  const std::size_t n = line.size();
  for (;;) {
    if (count == fields.size()) fields.emplace_back();
    std::string& f = fields[count++];
    f.clear();
    if (i < n && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= n) return false;
        const char c = line[i];
        if (c != '"') {
          const auto q = line.find('"', i);
          const std::size_t stop = q == std::string_view::npos ? n : q;
          f.append(line.substr(i, stop - i));
          i = stop;
          continue;
        }
        if (i + 1 == n || line[i + 1] == ',') {  // closing quote
          ++i;
          break;
        }
        f += '"';  // "" is an escaped quote; a lone " inside is kept as is
        i += line[i + 1] == '"' ? 2 : 1;
      }
    } else {
      const auto comma = line.find(',', i);
      const std::size_t stop = comma == std::string_view::npos ? n : comma;
      f.append(line.substr(i, stop - i));
      i = stop;
    }
    if (i >= n) return true;
    ++i;  // the comma
  }
}

struct Column {
  std::string_view name;
  int* index;
};

class Columns {
 public:
  int sha1 = -1, md5 = -1, crc32 = -1, sha256 = -1, name = -1, size = -1, product = -1, special = -1;
  std::size_t count = 0;

  // Maps header names to positions; false when this is not a file header.
  bool from_header(const std::vector<std::string>& fields, std::size_t n) {
    const Column known[] = {{"SHA-1", &sha1},         {"SHA1", &sha1},        {"MD5", &md5},
                            {"CRC32", &crc32},        {"SHA-256", &sha256},   {"SHA256", &sha256},
                            {"FileName", &name},      {"FileSize", &size},    {"ProductCode", &product},
                            {"SpecialCode", &special}};
    for (std::size_t i = 0; i < n; ++i) {
      for (const auto& k : known) {
        if (iequals(fields[i], k.name)) *k.index = static_cast<int>(i);
      }
    }
    count = n;
    return (sha1 >= 0 || md5 >= 0) && name >= 0;
  }
  // The 2.x layout, for a file whose header is missing.
  void default_layout() {
    sha1 = 0, md5 = 1, crc32 = 2, name = 3, size = 4, product = 5, special = 7;
    count = 8;
  }
};

std::string_view field(const std::vector<std::string>& f, int i) {
  return i < 0 ? std::string_view() : std::string_view(f[static_cast<std::size_t>(i)]);
}

template <typename D>
bool parse_optional_digest(std::string_view text, std::optional<D>& out) {
  text = trim(text);
  if (text.empty()) return true;
  out = parse_digest<D>(text);
  return out.has_value();
}

// Reads NSRLProd.txt into `products`; problems are warnings.
void read_products(const std::string& path, ReadContext& ctx, std::map<std::int64_t, SourceProduct>& products) {
  const std::string label = std::filesystem::path(path).filename().string();
  auto opened = LineReader::open(path);
  if (!opened) {
    ctx.warn(opened.error().message() + ": no product names or categories");
    return;
  }
  LineReader& in = *opened;
  std::vector<std::string> f;
  std::size_t n = 0;
  int code = -1, pname = -1, version = -1, type = -1;
  std::size_t columns = 0;
  std::string header;
  while (auto line = in.next()) {
    std::string_view text = *line;
    if (in.line_number() == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    if (trim(text).empty()) continue;
    const std::string at = label + " line " + std::to_string(in.line_number()) + ": ";
    if (!parse_csv(text, f, n)) {
      ctx.warn(at + "unterminated quoted field in " + quote(text));
      continue;
    }
    if (columns == 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (iequals(f[i], "ProductCode")) code = static_cast<int>(i);
        if (iequals(f[i], "ProductName")) pname = static_cast<int>(i);
        if (iequals(f[i], "ProductVersion")) version = static_cast<int>(i);
        if (iequals(f[i], "ApplicationType")) type = static_cast<int>(i);
      }
      if (code < 0) {
        ctx.warn(at + "not an NSRLProd.txt header " + quote(text) + ": no product names or categories");
        return;
      }
      columns = n;
      header.assign(text);
      continue;
    }
    if (text == header) continue;  // concatenated parts repeat the header
    if (n != columns) {
      ctx.warn(at + "expected " + std::to_string(columns) + " fields, found " + std::to_string(n));
      continue;
    }
    const auto id = parse_i64(trim(field(f, code)));
    if (!id) {
      ctx.warn(at + "bad ProductCode " + quote(field(f, code)));
      continue;
    }
    auto [it, fresh] = products.try_emplace(*id);
    SourceProduct& p = it->second;
    if (fresh) {
      p.id = *id;
      p.name = to_utf8(field(f, pname));
      p.version = to_utf8(field(f, version));
    }
    add_category(p, field(f, type));
  }
  if (in.error()) ctx.warn(label + ": " + in.error()->message());
}

}  // namespace

Result<SourceStats> read_nsrl_v2(const std::string& path, ReadContext& ctx) {
  auto opened = LineReader::open(path);
  if (!opened) return std::move(opened).error();
  LineReader& in = *opened;
  ctx.set_totals(in.file_size(), std::nullopt);
  TextSniffer sniff(ctx, "an NSRL RDS 2.x NSRLFile.txt");
  if (Status s = sniff.check_head(in); !s) return std::move(s).error();

  std::vector<std::string> f;
  std::size_t n = 0;
  Columns cols;
  std::string header;
  // Line 1 decides the layout before any product is read, so a file in the
  // wrong format fails fast.
  auto first = in.next();
  std::string_view text = first ? *first : std::string_view();
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const bool parsed = parse_csv(text, f, n);
  bool pending_first_row = false;
  if (parsed && cols.from_header(f, n)) {
    header.assign(text);
  } else if (parsed && n == 8 && field(f, 0).size() == Sha1Digest::kHexDigits && is_hex(field(f, 0))) {
    cols.default_layout();
    ctx.warn("line 1: no header line; assuming the RDS 2.x layout \"SHA-1\",\"MD5\",\"CRC32\",\"FileName\",...");
    pending_first_row = true;
  } else {
    return Error(ErrorCode::parse_error,
                 "does not look like an NSRL RDS 2.x NSRLFile.txt file: line 1 is not its header "
                 "(\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\",... or the pre-2.0 one) but " +
                     quote(text));
  }

  // Products first, so the index builder knows every product before its rows.
  std::string products_path = ctx.options().nsrl_v2_products_path;
  if (products_path.empty()) {
    products_path = (std::filesystem::path(path).parent_path() / "NSRLProd.txt").string();
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(products_path, ec)) {
    std::map<std::int64_t, SourceProduct> products;
    read_products(products_path, ctx, products);
    for (auto& [id, p] : products) {
      classify_product(p, ctx.options());
      if (Status s = ctx.product(p); !s) return std::move(s).error();
    }
  } else {
    ctx.warn(products_path + " not found: rows keep their product codes but have no product names or categories");
  }

  SourceRow row;
  for (;;) {
    if (!pending_first_row) {
      auto line = in.next();
      if (!line) break;
      text = *line;
      if (trim(text).empty()) continue;
      if (text == header) continue;  // concatenated per-CD parts repeat the header
      ctx.set_bytes(in.bytes_consumed());
    }
    pending_first_row = false;
    const std::string at = "line " + std::to_string(in.line_number()) + ": ";
    std::string problem;
    if (in.overlong()) {
      problem = "line longer than " + std::to_string(LineReader::kMaxLine) + " bytes";
    } else if (!parse_csv(text, f, n)) {
      problem = "unterminated quoted field in " + quote(text);
    } else if (n != cols.count) {
      problem = "expected " + std::to_string(cols.count) + " fields, found " + std::to_string(n) + " in " +
                quote(text);
    }
    row = SourceRow{};
    if (problem.empty()) {
      if (!parse_optional_digest(field(f, cols.sha1), row.sha1)) {
        problem = "bad SHA-1 " + quote(field(f, cols.sha1));
      } else if (!parse_optional_digest(field(f, cols.md5), row.md5)) {
        problem = "bad MD5 " + quote(field(f, cols.md5));
      } else if (!parse_optional_digest(field(f, cols.sha256), row.sha256)) {
        problem = "bad SHA-256 " + quote(field(f, cols.sha256));
      } else if (!row.sha1 && !row.md5 && !row.sha256) {
        problem = "no digest";
      }
    }
    if (problem.empty() && cols.crc32 >= 0) {
      const std::string_view crc = trim(field(f, cols.crc32));
      if (!crc.empty()) {
        if (auto c = parse_crc32(crc)) {
          row.crc32 = *c;
        } else {
          problem = "bad CRC32 " + quote(crc);
        }
      }
    }
    if (problem.empty() && cols.size >= 0) {
      const std::string_view size = trim(field(f, cols.size));
      if (!size.empty()) {
        row.size = parse_u64(size);
        if (!row.size) problem = "bad FileSize " + quote(size);
      }
    }
    if (problem.empty() && cols.product >= 0) {
      const std::string_view code = trim(field(f, cols.product));
      if (!code.empty()) {
        const auto id = parse_i64(code);
        if (id && *id >= 0) {
          row.product_id = *id;
        } else {
          problem = "bad ProductCode " + quote(code);
        }
      }
    }
    if (!problem.empty()) {
      if (Status s = sniff.bad(at + problem); !s) return std::move(s).error();
      continue;
    }
    sniff.good();
    row.name = to_utf8(field(f, cols.name));
    row.special_code.assign(trim(field(f, cols.special)));
    if (row.special_code == "M") row.class_override = ReferenceClass::malicious;
    if (Status s = ctx.row(row); !s) return std::move(s).error();
  }
  if (in.error()) return *in.error();
  ctx.set_bytes(in.bytes_consumed());
  if (Status s = sniff.finish(); !s) return std::move(s).error();
  return ctx.stats();
}

}  // namespace hashsieve::refset::detail
