// Third-party scanner throughput over the mix (real /usr/lib files, see
// bench/make_mix.sh; the figures in docs/performance.md use a 50 MB mix):
//   libclamav with a hash database (.hdb, 10,000 MD5 signatures), all file
//   parsers on, and YARA with a few rules (text, hex with jumps, a regular
//   expression, a filesize condition). Run with HASHSIEVE_MIX_LIST set.
//   With HASHSIEVE_CLAMD_SOCKET set, also clamd over INSTREAM (a clamd the
//   caller started, StreamMaxLength above the largest mix file).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "bench_mix.h"
#include "hashsieve/scanners/clamav.h"
#include "hashsieve/scanners/yara.h"

namespace {

using hashsieve::bench::mix;
using hashsieve::scanners::ExternalScanner;

// A scratch directory removed at exit.
struct Scratch {
  std::filesystem::path path;
  Scratch() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-scanners-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

Scratch& scratch() {
  static Scratch s;
  return s;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(2);
}

// libclamav with its scratch directory in `temp_dir` ("" = its default, /tmp).
std::unique_ptr<ExternalScanner> make_clamav(const std::string& temp_dir) {
  {
    const auto db = scratch().path / "bench.hdb";
    std::ofstream out(db);
    std::mt19937_64 rng(42);
    char line[80];
    for (int i = 0; i < 10000; ++i) {
      std::snprintf(line, sizeof line, "%016llx%016llx:%llu:Bench.Hash.%d\n",
                    static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()),
                    static_cast<unsigned long long>(rng() % 1000000 + 1), i);
      out << line;
    }
    out.close();
  }
  auto s = hashsieve::scanners::open_clamav({{(scratch().path / "bench.hdb").string()}, {}, temp_dir});
  if (!s.ok()) fail(s.error().message());
  return std::move(*s);
}

const ExternalScanner& yara() {
  static const std::unique_ptr<ExternalScanner> scanner = [] {
    const auto dir = scratch().path / "rules";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "bench.yar") << R"(
rule text_marker { strings: $a = "HASHSIEVE-BENCH-MARKER" nocase condition: $a }
rule hex_jump { strings: $h = { 4D 5A [4-16] 50 45 00 00 } condition: $h }
rule shell_download {
  strings:
    $c = "curl" ascii wide
    $r = /wget +https?:\/\/[a-z0-9.]{4,40}\/[a-z]{3,12}\.sh/
  condition: $c and $r
}
rule big_elf { condition: filesize > 5MB and uint32(0) == 0x464c457f }
)";
    auto s = hashsieve::scanners::open_yara({dir.string(), {}});
    if (!s.ok()) fail(s.error().message());
    return std::move(s->value);
  }();
  return *scanner;
}

std::size_t scan_files(const ExternalScanner& scanner, std::size_t first, std::size_t step) {
  const auto& m = mix();
  std::size_t findings = 0;
  for (std::size_t i = first; i < m.files.size(); i += step) {
    auto r = scanner.scan_buffer(m.files[i].bytes(), m.paths[i]);
    if (!r.ok()) fail(r.error().message());
    findings += r->size();
  }
  return findings;
}

void run(benchmark::State& state, const ExternalScanner& scanner, int threads) {
  mix();
  std::size_t total_findings = 0;
  for (auto _ : state) {
    std::vector<std::size_t> findings(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) {
      pool.emplace_back([&, t] { findings[static_cast<std::size_t>(t)] = scan_files(scanner, static_cast<std::size_t>(t), static_cast<std::size_t>(threads)); });
    }
    findings[0] = scan_files(scanner, 0, static_cast<std::size_t>(threads));
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(findings);
    total_findings = 0;
    for (std::size_t f : findings) total_findings += f;
  }
  // Findings per pass over the mix: a sanity check that the engines ran.
  state.counters["findings"] = static_cast<double>(total_findings);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(mix().total_bytes));
}

void BM_ClamavHashDb(benchmark::State& state) {
  static const auto scanner = make_clamav("");
  run(state, *scanner, static_cast<int>(state.range(0)));
}
// CPU time is the whole process's (all scanning threads): on a loaded machine
// bytes / CPU time is the per-core throughput, real time the wall clock.
BENCHMARK(BM_ClamavHashDb)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// The same with libclamav's per-scan scratch directories on a tmpfs.
void BM_ClamavHashDbTmpfs(benchmark::State& state) {
  static const auto scanner = make_clamav("/dev/shm");
  run(state, *scanner, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_ClamavHashDbTmpfs)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

void BM_YaraRules(benchmark::State& state) { run(state, yara(), static_cast<int>(state.range(0))); }
BENCHMARK(BM_YaraRules)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

void BM_ClamdInstream(benchmark::State& state) {
  const char* socket = std::getenv("HASHSIEVE_CLAMD_SOCKET");
  if (socket == nullptr) {
    state.SkipWithError("set HASHSIEVE_CLAMD_SOCKET to a running clamd's LocalSocket");
    return;
  }
  hashsieve::scanners::ClamdOptions options;
  options.socket_path = socket;
  auto scanner = hashsieve::scanners::connect_clamd(options);
  if (!scanner.ok()) fail(scanner.error().message());
  run(state, **scanner, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_ClamdInstream)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
