// Reference-set source readers: rows/s through read_source with a sink that
// only counts. nsrl-v3 reads $HASHSIEVE_RDS_V3 when set (e.g. a database made
// by gen_rds_v3), else a 200k-row database built here; the text formats read
// 200k-line files built here.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "hashsieve/refset/source.h"

namespace {

using namespace hashsieve::refset;

constexpr int kRows = 200000;

class CountingSink : public SourceSink {
 public:
  hashsieve::Status on_row(const SourceRow& row) override {
    ++rows;
    bytes += row.name.size();
    return {};
  }
  std::uint64_t rows = 0, bytes = 0;
};

std::string scratch(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("hashsieve_source_bench_" + name)).string();
}

const std::string& v3_db() {
  static const std::string path = [] {
    if (const char* env = std::getenv("HASHSIEVE_RDS_V3")) return std::string(env);
    const std::string p = scratch("rds.db");
    std::filesystem::remove(p);
    sqlite3* db = nullptr;
    sqlite3_open(p.c_str(), &db);
    const std::string sql =
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE FILE (sha256 VARCHAR, sha1 VARCHAR, md5 VARCHAR, crc32 VARCHAR, file_name VARCHAR,"
        " file_size INTEGER, package_id INTEGER);"
        "CREATE TABLE PKG (package_id INTEGER, name VARCHAR, version VARCHAR, operating_system_id INTEGER,"
        " manufacturer_id INTEGER, language VARCHAR, application_type VARCHAR);"
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < " + std::to_string(kRows) + ")"
        " INSERT INTO FILE SELECT hex(randomblob(32)), hex(randomblob(20)), hex(randomblob(16)),"
        " hex(randomblob(4)), 'file' || x || '.dll', x * 37 % 100000, x % 25000 FROM n;"
        "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 24999)"
        " INSERT INTO PKG SELECT x, 'Package ' || x, '1.0', 189, 1, 'English', 'Utility' FROM n;";
    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return p;
  }();
  return path;
}

std::string hex_line(std::uint64_t i, int digits) {
  char buf[80];
  std::string s;
  while (static_cast<int>(s.size()) < digits) {
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>((i + s.size()) * 0x9E3779B97F4A7C15ull));
    s += buf;
  }
  s.resize(static_cast<std::size_t>(digits));
  return s;
}

std::string text_file(SourceFormat format) {
  const std::string p = scratch(std::string(to_string(format)) + ".txt");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (format == SourceFormat::nsrl_v2) {
    out << "\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\",\"FileSize\",\"ProductCode\",\"OpSystemCode\",\"SpecialCode\"\r\n";
  }
  for (int i = 0; i < kRows; ++i) {
    const auto u = static_cast<std::uint64_t>(i);
    switch (format) {
      case SourceFormat::nsrl_v2:
        out << '"' << hex_line(u, 40) << "\",\"" << hex_line(u + 1, 32) << "\",\"" << hex_line(u + 2, 8)
            << "\",\"file" << i << ".dll\"," << i % 100000 << ',' << i % 25000 << ",\"189\",\"\"\r\n";
        break;
      case SourceFormat::clamav: out << hex_line(u, 64) << ':' << i % 100000 << ":Win.Test.Sig-" << i << '\n'; break;
      case SourceFormat::virusshare: out << hex_line(u, 32) << '\n'; break;
      case SourceFormat::hashlist: out << hex_line(u, 64) << "  dir/file" << i << ".bin\n"; break;
      case SourceFormat::nsrl_v3: break;
    }
  }
  return p;
}

void run(benchmark::State& state, SourceFormat format, const std::string& path) {
  std::uint64_t rows = 0;
  for (auto _ : state) {
    CountingSink sink;
    auto stats = read_source(format, path, sink);
    if (!stats.ok()) {
      state.SkipWithError(stats.error().message().c_str());
      return;
    }
    rows += stats->rows;
    benchmark::DoNotOptimize(sink.bytes);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rows));
  state.SetBytesProcessed(static_cast<std::int64_t>(std::filesystem::file_size(path)) * state.iterations());
}

void BM_ReadNsrlV3(benchmark::State& state) { run(state, SourceFormat::nsrl_v3, v3_db()); }
void BM_ReadText(benchmark::State& state, SourceFormat format) {
  static std::string paths[5];
  auto& p = paths[static_cast<int>(format)];
  if (p.empty()) p = text_file(format);
  run(state, format, p);
}

BENCHMARK(BM_ReadNsrlV3)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ReadText, nsrl_v2, SourceFormat::nsrl_v2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReadText, clamav, SourceFormat::clamav)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReadText, virusshare, SourceFormat::virusshare)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReadText, hashlist, SourceFormat::hashlist)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
