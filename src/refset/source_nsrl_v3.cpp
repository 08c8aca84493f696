// NSRL RDS v3: an SQLite database, minimal layout (FILE, MFG, OS, PKG,
// VERSION tables + DISTINCT_HASH view) or full layout (FILE, PKG, ... are
// views over normalised base tables).
//
// - Tables and columns are found by name (sqlite_master, PRAGMA table_info),
//   never by position: published schemas drift (crc32 present or not, FILE a
//   table or a view). Missing optional columns read as NULL.
// - Products come first, from PKG ordered by package_id: PKG has one row per
//   (package, OS, manufacturer, language, application type), so consecutive
//   rows of one package are folded into one SourceProduct carrying all its
//   application types. Only one package is held at a time.
// - Rows then stream from FILE in storage order (no ORDER BY: sorting a
//   billion-row table would need a temporary B-tree as large as the table).
//   FILE repeats a digest once per package that ships the file, and we emit
//   one SourceRow per FILE row, i.e. per (digest, package). The index builder
//   downstream de-duplicates digests and merges their packages' categories;
//   that is how "each distinct hash with all its packages" is reached without
//   this reader holding any set of digests.
// - Hex digests are upper case in NSRL data; parse_hex accepts either case
//   and the digest types store bytes, so case is normalised here.
// - The database is opened read-only with immutable=1: no locks, no journal or
//   WAL lookups, so a set on read-only media (an ISO, a shared mount) opens.
//   The flip side is that a database being written concurrently, or one with
//   an un-checkpointed -wal file, is not supported; RDS releases are neither.
#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "hashsieve/core/file.h"
#include "source_internal.h"
#include "sqlite_handle.h"

namespace hashsieve::refset::detail {

namespace {

using Db = SqliteDb;
using Stmt = SqliteStmt;

constexpr std::string_view kWhat = "an NSRL RDS v3 SQLite database";

Error sqlite_error(sqlite3* db, int rc, const std::string& what) {
  const int primary = rc & 0xFF;
  const std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (primary) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error(ErrorCode::parse_error, msg + " (corrupt or truncated database)");
    case SQLITE_IOERR: return Error(ErrorCode::io_error, msg);
    case SQLITE_CANTOPEN: return Error(ErrorCode::io_error, msg);
    case SQLITE_PERM:
    case SQLITE_AUTH: return Error(ErrorCode::permission_denied, msg);
    case SQLITE_NOMEM: return Error(ErrorCode::limit_exceeded, msg);
    default: return Error(ErrorCode::parse_error, msg);
  }
}

Result<Stmt> prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "preparing '" + sql + "'");
  return stmt;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string uri_for(const std::string& path) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).string();
  if (ec) abs = path;
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file://";
  if (abs.empty() || abs.front() != '/') uri += '/';
  for (char ch : abs) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
        c == '_' || c == '-' || c == '~') {
      uri += ch;
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 0xF];
    }
  }
  return uri + "?immutable=1";
}

std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]};
}

// Checks the file before SQLite sees it, for errors that name the problem:
// empty, not SQLite at all (and what it looks like instead), or shorter than
// its header says (a truncated download). SQLite itself would report some of
// these only as "file is not a database" and others not at all until a read
// reaches the missing pages.
Status check_file(const std::string& path, std::uint64_t& file_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, path);
  std::array<unsigned char, 100> h{};
  std::size_t got = 0;
  while (got < h.size()) {
    const ssize_t n = ::read(fd, h.data() + got, h.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  const off_t end = ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  file_size = end > 0 ? static_cast<std::uint64_t>(end) : 0;
  const std::string_view head(reinterpret_cast<const char*>(h.data()), got);
  if (file_size == 0) return Error(ErrorCode::parse_error, "empty file, expected " + std::string(kWhat));
  if (!starts_with_sqlite_magic(head)) {
    std::string hint;
    if (head.find('\0') == std::string_view::npos) {
      hint = "; it is text starting " + quote(head.substr(0, head.find('\n'))) +
             " (an RDS 2.x NSRLFile.txt, ClamAV or hash list? pick that format)";
    }
    return Error(ErrorCode::parse_error,
                 "does not look like " + std::string(kWhat) + ": no 'SQLite format 3' header" + hint);
  }
  if (got < h.size()) {
    return Error(ErrorCode::parse_error, "truncated SQLite database: " + std::to_string(file_size) +
                                             " bytes, shorter than the 100-byte header");
  }
  std::uint64_t page_size = std::uint64_t{h[16]} << 8 | h[17];
  if (page_size == 1) page_size = 65536;
  const std::uint32_t pages = be32(&h[28]);
  // The in-header page count is only valid when "version-valid-for" equals
  // the change counter (https://www.sqlite.org/fileformat.html).
  const bool count_valid = pages != 0 && be32(&h[92]) == be32(&h[24]);
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
    return Error(ErrorCode::parse_error, "corrupt SQLite header: page size " + std::to_string(page_size));
  }
  if (count_valid && file_size < page_size * pages) {
    return Error(ErrorCode::parse_error,
                 "truncated SQLite database: the header says " + std::to_string(pages) + " pages of " +
                     std::to_string(page_size) + " bytes (" + std::to_string(page_size * pages) +
                     " bytes) but the file has " + std::to_string(file_size));
  }
  if (file_size % page_size != 0) {
    return Error(ErrorCode::parse_error, "truncated SQLite database: " + std::to_string(file_size) +
                                             " bytes is not a whole number of " + std::to_string(page_size) +
                                             "-byte pages");
  }
  return {};
}

struct Object {
  std::string name;
  bool is_table = false;
  bool found = false;
};

// Finds FILE and PKG (names compared case-insensitively, as SQLite does).
Status find_objects(sqlite3* db, Object& file, Object& pkg) {
  auto stmt = prepare(db, "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')");
  if (!stmt) return std::move(stmt).error();
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    const auto* n = sqlite3_column_text(stmt->get(), 0);
    const auto* t = sqlite3_column_text(stmt->get(), 1);
    if (!n || !t) continue;
    const std::string_view name(reinterpret_cast<const char*>(n));
    for (Object* o : {&file, &pkg}) {
      if (!o->found && iequals(name, o == &file ? "FILE" : "PKG")) {
        o->found = true;
        o->name.assign(name);
        o->is_table = std::string_view(reinterpret_cast<const char*>(t)) == "table";
      }
    }
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading the schema");
  return {};
}

// Column names of a table or view, in order, lower-cased.
Result<std::vector<std::string>> columns_of(sqlite3* db, const std::string& object) {
  auto stmt = prepare(db, "PRAGMA table_info(" + quote_identifier(object) + ")");
  if (!stmt) return std::move(stmt).error();
  std::vector<std::string> cols;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    const auto* n = sqlite3_column_text(stmt->get(), 1);
    std::string name = n ? reinterpret_cast<const char*>(n) : "";
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    cols.push_back(std::move(name));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading the columns of " + object);
  return cols;
}

bool has(const std::vector<std::string>& cols, std::string_view name) {
  for (const auto& c : cols) {
    if (c == name) return true;
  }
  return false;
}

// "col" if present, else NULL, for a SELECT list.
std::string column_or_null(const std::vector<std::string>& cols, std::string_view name) {
  return has(cols, name) ? quote_identifier(name) : std::string("NULL");
}

std::string_view text_of(sqlite3_stmt* stmt, int col) {
  const auto* p = sqlite3_column_text(stmt, col);
  if (!p) return {};
  return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt, col))};
}

Status read_products(sqlite3* db, const Object& pkg, ReadContext& ctx) {
  auto cols = columns_of(db, pkg.name);
  if (!cols) return std::move(cols).error();
  if (!has(*cols, "package_id")) {
    ctx.warn(pkg.name + " has no package_id column: no product names or categories");
    return {};
  }
  const std::string sql = "SELECT package_id, " + column_or_null(*cols, "name") + ", " +
                          column_or_null(*cols, "version") + ", " + column_or_null(*cols, "application_type") +
                          " FROM " + quote_identifier(pkg.name) + " ORDER BY package_id";
  auto stmt = prepare(db, sql);
  if (!stmt) return std::move(stmt).error();
  sqlite3_stmt* s = stmt->get();
  SourceProduct current;
  bool have = false;
  auto flush = [&]() -> Status {
    if (!have) return {};
    classify_product(current, ctx.options());
    return ctx.product(current);
  };
  std::uint64_t n = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ++n;
    std::optional<std::int64_t> parsed;
    if (sqlite3_column_type(s, 0) == SQLITE_INTEGER) {
      parsed = sqlite3_column_int64(s, 0);
    } else {
      parsed = parse_i64(trim(text_of(s, 0)));  // a view may hand ids over as text
    }
    if (!parsed) {
      ctx.warn(pkg.name + " row " + std::to_string(n) + ": bad package_id " + quote(text_of(s, 0)));
      continue;
    }
    const std::int64_t id = *parsed;
    if (!have || id != current.id) {
      if (Status st = flush(); !st) return st;
      current = SourceProduct{};
      current.id = id;
      current.name = to_utf8(text_of(s, 1));
      current.version = to_utf8(text_of(s, 2));
      have = true;
    }
    add_category(current, text_of(s, 3));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading " + pkg.name + " row " + std::to_string(n + 1));
  return flush();
}

template <typename D>
bool digest_column(sqlite3_stmt* s, int col, std::optional<D>& out) {
  out.reset();
  const std::string_view text = text_of(s, col);
  if (text.empty()) return true;
  out = parse_digest<D>(text);
  return out.has_value();
}

}  // namespace

Result<SourceStats> read_nsrl_v3(const std::string& path, ReadContext& ctx) {
  std::uint64_t file_size = 0;
  if (Status s = check_file(path, file_size); !s) return std::move(s).error();

  // NOMUTEX: the connection never leaves this thread, and the serialized
  // mode's per-call mutex was 8% of a read.
  sqlite3* raw = nullptr;
  const int orc = sqlite3_open_v2(uri_for(path).c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (orc != SQLITE_OK) return sqlite_error(raw, orc, "opening the database");

  Object file, pkg;
  if (Status s = find_objects(db.get(), file, pkg); !s) return std::move(s).error();
  if (!file.found) {
    return Error(ErrorCode::parse_error, "the database has no FILE table or view: not " + std::string(kWhat));
  }
  auto file_cols = columns_of(db.get(), file.name);
  if (!file_cols) return std::move(file_cols).error();
  if (!has(*file_cols, "sha256") && !has(*file_cols, "sha1") && !has(*file_cols, "md5")) {
    return Error(ErrorCode::parse_error, file.name + " has none of the columns sha256, sha1, md5: not " +
                                             std::string(kWhat));
  }
  if (!has(*file_cols, "package_id")) ctx.warn(file.name + " has no package_id column: rows carry no product");

  std::optional<std::uint64_t> estimate;
  if (file.is_table) {
    // max(rowid) is one B-tree descent, unlike count(*); an estimate because
    // rowids may have gaps. WITHOUT ROWID tables have no rowid: no estimate.
    if (auto st = prepare(db.get(), "SELECT max(rowid) FROM " + quote_identifier(file.name));
        st && sqlite3_step(st->get()) == SQLITE_ROW && sqlite3_column_type(st->get(), 0) == SQLITE_INTEGER) {
      estimate = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 0));
    }
  }
  ctx.set_totals(file_size, estimate);

  if (pkg.found) {
    if (Status s = read_products(db.get(), pkg, ctx); !s) return std::move(s).error();
  } else {
    ctx.warn("the database has no PKG table or view: rows carry package ids but no product names or categories");
  }

  const auto& fc = *file_cols;
  const std::string sql = "SELECT " + column_or_null(fc, "sha256") + ", " + column_or_null(fc, "sha1") + ", " +
                          column_or_null(fc, "md5") + ", " + column_or_null(fc, "crc32") + ", " +
                          column_or_null(fc, "file_name") + ", " + column_or_null(fc, "file_size") + ", " +
                          column_or_null(fc, "package_id") + " FROM " + quote_identifier(file.name);
  auto stmt = prepare(db.get(), sql);
  if (!stmt) return std::move(stmt).error();
  sqlite3_stmt* s = stmt->get();

  TextSniffer sniff(ctx, kWhat, file.name + " rows");
  SourceRow row;
  std::uint64_t n = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ++n;
    const char* problem = nullptr;
    int bad_col = -1;
    if (!digest_column(s, 0, row.sha256)) {
      problem = "bad SHA-256 ", bad_col = 0;
    } else if (!digest_column(s, 1, row.sha1)) {
      problem = "bad SHA-1 ", bad_col = 1;
    } else if (!digest_column(s, 2, row.md5)) {
      problem = "bad MD5 ", bad_col = 2;
    } else if (!row.sha256 && !row.sha1 && !row.md5) {
      problem = "no digest";
    }
    row.crc32.reset();
    if (!problem) {
      const std::string_view crc = text_of(s, 3);
      if (!crc.empty()) {
        if (auto c = parse_crc32(crc)) {
          row.crc32 = *c;
        } else {
          problem = "bad CRC32 ", bad_col = 3;
        }
      }
    }
    row.size.reset();
    if (!problem) {
      switch (sqlite3_column_type(s, 5)) {
        case SQLITE_NULL: break;
        case SQLITE_INTEGER: {
          const std::int64_t v = sqlite3_column_int64(s, 5);
          if (v >= 0) {
            row.size = static_cast<std::uint64_t>(v);
          } else {
            problem = "bad file_size ", bad_col = 5;
          }
          break;
        }
        default:
          row.size = parse_u64(trim(text_of(s, 5)));
          if (!row.size) problem = "bad file_size ", bad_col = 5;
      }
    }
    row.product_id = -1;
    if (!problem && sqlite3_column_type(s, 6) != SQLITE_NULL) {
      if (sqlite3_column_type(s, 6) == SQLITE_INTEGER) {
        row.product_id = sqlite3_column_int64(s, 6);
      } else if (auto id = parse_i64(trim(text_of(s, 6)))) {
        row.product_id = *id;
      } else {
        problem = "bad package_id ", bad_col = 6;
      }
    }
    if (problem) {
      std::string msg = file.name + " row " + std::to_string(n) + ": " + problem;
      if (bad_col >= 0) msg += quote(text_of(s, bad_col));
      if (Status st = sniff.bad(std::move(msg)); !st) return std::move(st).error();
      continue;
    }
    sniff.good();
    row.name = to_utf8(text_of(s, 4));
    if (Status st = ctx.row(row); !st) return std::move(st).error();
  }
  if (rc != SQLITE_DONE) return sqlite_error(db.get(), rc, "reading " + file.name + " row " + std::to_string(n + 1));
  ctx.set_bytes(file_size);
  if (Status st = sniff.finish(); !st) return std::move(st).error();
  return ctx.stats();
}

}  // namespace hashsieve::refset::detail
