// gen_rds_v3: writes a synthetic NSRL RDS v3 *minimal* database in the real
// schema (FILE/MFG/OS/PKG/VERSION + DISTINCT_HASH), for benchmarks of the
// nsrl-v3 reader and the index builder. Not a Google Benchmark.
//
//   gen_rds_v3 OUT.db ROWS [SEED]
//
// Shape, chosen to look like a real set:
// - about ROWS/8 packages; each has 1-3 PKG rows (application types), and
//   about 1 in 200 packages is a "Hacker Tool" (1 in 400 "Steganography");
// - package popularity is skewed (a few packages own many files);
// - about 15% of FILE rows repeat an earlier file's digests under another
//   package, as FILE does for files shipped by several packages;
// - file sizes spread log-uniformly from 16 B to 64 MiB; names are drawn from
//   common stems and extensions; hex is upper case, as NSRL publishes it.
// Speed: one transaction, prepared statements, journal_mode=OFF,
// synchronous=OFF, exclusive locking.
#include <sqlite3.h>

#include "hashsieve/refset/nsrl_v3_schema.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

// Rows that every generated database shares; the tables come from kNsrlV3MinimalSchema.
constexpr const char* kFixedRows = R"sql(
INSERT INTO MFG VALUES (1, 'Microsoft'), (2, 'Adobe'), (3, 'Apple'), (4, 'Community');
INSERT INTO OS VALUES (189, 'Windows', '10', 1), (190, 'macOS', '13', 3), (191, 'Linux', '6', 4);
INSERT INTO VERSION VALUES ('2024.03.1', 'Modern', '2024-03-01', '2024-03-15', 'synthetic (gen_rds_v3); not the official RDS');
)sql";

constexpr const char* kTypes[] = {"Operating System", "Word Processor", "Spreadsheet", "Utility", "Compression",
                                  "Development Tool", "Game", "Multimedia", "Database", "Security",
                                  "Web Browser", "Graphics", "Encryption", "Networking", "Education"};
constexpr const char* kStems[] = {"setup", "readme", "libcrypto", "icon", "msvcp140", "kernel32", "index",
                                  "config", "update", "help", "main", "data", "strings", "license", "resource"};
constexpr const char* kExts[] = {".dll", ".exe", ".txt", ".png", ".html", ".so", ".dat", ".xml", ".js", ".ico",
                                 ".mui", ".cab", ".sys", ".json", ".py"};
constexpr const char* kLanguages[] = {"English", "French", "German", "Japanese", "Multilanguage"};

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

void random_hex(Rng& rng, char* out, int digits) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::uint64_t bits = 0;
  for (int i = 0; i < digits; ++i) {
    if (i % 16 == 0) bits = rng.next();
    out[i] = kHex[bits & 0xF];
    bits >>= 4;
  }
  out[digits] = '\0';
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

[[noreturn]] void die(sqlite3* db, const char* what) {
  std::fprintf(stderr, "gen_rds_v3: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
  std::exit(1);
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "gen_rds_v3: %s\n", err ? err : "?");
    std::exit(1);
  }
}

Stmt prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) die(db, sql);
  return Stmt(s);
}

void step(sqlite3* db, sqlite3_stmt* s) {
  if (sqlite3_step(s) != SQLITE_DONE) die(db, "insert");
  sqlite3_reset(s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gen_rds_v3 OUT.db ROWS [SEED]\n");
    return 2;
  }
  const std::string out = argv[1];
  const std::uint64_t rows = std::strtoull(argv[2], nullptr, 10);
  Rng rng{argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1};
  const std::uint64_t packages = rows / 8 ? rows / 8 : 1;
  const auto t0 = std::chrono::steady_clock::now();

  std::remove(out.c_str());
  sqlite3* raw = nullptr;
  if (sqlite3_open(out.c_str(), &raw) != SQLITE_OK) die(raw, "open");
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  exec(raw, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE; "
            "PRAGMA cache_size=-262144;");
  exec(raw, hashsieve::refset::kNsrlV3MinimalSchema);
  exec(raw, kFixedRows);
  exec(raw, "BEGIN");

  // Packages and their application types.
  auto pkg = prepare(raw, "INSERT INTO PKG VALUES (?, ?, ?, ?, ?, ?, ?)");
  std::uint64_t pkg_rows = 0, hacker = 0;
  char name[64], version[16];
  for (std::uint64_t id = 1; id <= packages; ++id) {
    std::snprintf(name, sizeof name, "%s Suite %llu", kStems[rng.below(std::size(kStems))],
                  static_cast<unsigned long long>(id));
    std::snprintf(version, sizeof version, "%llu.%llu", static_cast<unsigned long long>(1 + rng.below(12)),
                  static_cast<unsigned long long>(rng.below(10)));
    const int os = 189 + static_cast<int>(rng.below(3));
    const char* lang = kLanguages[rng.below(std::size(kLanguages))];
    const int ntypes = 1 + static_cast<int>(rng.below(3));
    const char* types[3];
    for (int t = 0; t < ntypes; ++t) types[t] = kTypes[(id * 7 + static_cast<std::uint64_t>(t) * 5) % std::size(kTypes)];
    if (id % 200 == 17) {
      types[0] = "Hacker Tool";
      ++hacker;
    } else if (id % 400 == 101) {
      types[0] = "Steganography";
      ++hacker;
    }
    for (int t = 0; t < ntypes; ++t) {
      sqlite3_bind_int64(pkg.get(), 1, static_cast<sqlite3_int64>(id));
      sqlite3_bind_text(pkg.get(), 2, name, -1, SQLITE_STATIC);
      sqlite3_bind_text(pkg.get(), 3, version, -1, SQLITE_STATIC);
      sqlite3_bind_int(pkg.get(), 4, os);
      sqlite3_bind_int(pkg.get(), 5, 1 + (os - 189));
      sqlite3_bind_text(pkg.get(), 6, lang, -1, SQLITE_STATIC);
      sqlite3_bind_text(pkg.get(), 7, types[t], -1, SQLITE_STATIC);
      step(raw, pkg.get());
      ++pkg_rows;
    }
  }

  // Files. A small ring of recent files supplies the repeated digests.
  auto file = prepare(raw, "INSERT INTO FILE VALUES (?, ?, ?, ?, ?, ?, ?)");
  struct Recent {
    char sha256[65], sha1[41], md5[33], crc[9], name[48];
    sqlite3_int64 size;
  };
  std::vector<Recent> ring(4096);
  std::uint64_t repeats = 0;
  for (std::uint64_t i = 0; i < rows; ++i) {
    Recent* f;
    if (i > ring.size() && rng.below(100) < 15) {
      f = &ring[rng.below(ring.size())];
      ++repeats;
    } else {
      f = &ring[i % ring.size()];
      random_hex(rng, f->sha256, 64);
      random_hex(rng, f->sha1, 40);
      random_hex(rng, f->md5, 32);
      random_hex(rng, f->crc, 8);
      std::snprintf(f->name, sizeof f->name, "%s%llu%s", kStems[rng.below(std::size(kStems))],
                    static_cast<unsigned long long>(rng.below(1000)), kExts[rng.below(std::size(kExts))]);
      f->size = static_cast<sqlite3_int64>(std::exp(2.77 + rng.unit() * (17.97 - 2.77)));  // 16 B .. 64 MiB
    }
    // Skewed popularity: u^3 puts most files in the low package ids.
    const double u = rng.unit();
    const auto package = 1 + static_cast<sqlite3_int64>(static_cast<double>(packages) * u * u * u);
    sqlite3_bind_text(file.get(), 1, f->sha256, 64, SQLITE_STATIC);
    sqlite3_bind_text(file.get(), 2, f->sha1, 40, SQLITE_STATIC);
    sqlite3_bind_text(file.get(), 3, f->md5, 32, SQLITE_STATIC);
    sqlite3_bind_text(file.get(), 4, f->crc, 8, SQLITE_STATIC);
    sqlite3_bind_text(file.get(), 5, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(file.get(), 6, f->size);
    sqlite3_bind_int64(file.get(), 7, package);
    step(raw, file.get());
  }
  exec(raw, "COMMIT");
  pkg.reset();
  file.reset();
  db.reset();

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %llu FILE rows (%llu repeated digests), %llu packages (%llu PKG rows, %llu suspicious) "
              "in %.2f s, %.0f rows/s\n",
              out.c_str(), static_cast<unsigned long long>(rows), static_cast<unsigned long long>(repeats),
              static_cast<unsigned long long>(packages), static_cast<unsigned long long>(pkg_rows),
              static_cast<unsigned long long>(hacker), secs, static_cast<double>(rows) / secs);
  return 0;
}
