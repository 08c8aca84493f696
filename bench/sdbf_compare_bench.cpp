// All-pairs SDBF comparison throughput, single-threaded (spec 10's workload).
//
// Digests come from $HASHSIEVE_SDBF_SET (any digest file: stream, block or
// mixed), default the synthetic stream set in the source tree. The first
// 2,000 digests (or all, if fewer; $HASHSIEVE_SDBF_LIMIT overrides) are
// compared i<j, as `sdhash -c set.sdbf` does. Counters:
//   filter_cmp/s  (reference filter, target filter) pairs evaluated per second
//   pairs/s       digest pairs per second
// Each kernel the CPU supports is measured separately.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "../src/digest/sdbf_compare_internal.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"

namespace {

using hashsieve::digest::Sdbf;
using hashsieve::digest::sdbf_internal::CompareKernel;

// The default set lives in the source tree; CMake compiles with absolute
// paths, so it is found relative to this file without a compile definition.
std::string default_set_path() {
  std::string here = __FILE__;
  const std::size_t slash = here.rfind('/');
  here = slash == std::string::npos ? std::string(".") : here.substr(0, slash);
  return here + "/../tests/data/sdhash/synthetic/expected/stream.sdbf";
}

std::string set_path() {
  const char* env = std::getenv("HASHSIEVE_SDBF_SET");
  return env != nullptr ? std::string(env) : default_set_path();
}

const std::vector<Sdbf>& digest_set() {
  static const std::vector<Sdbf> set = [] {
    const std::string path = set_path();
    std::size_t limit = 2000;
    if (const char* l = std::getenv("HASHSIEVE_SDBF_LIMIT")) limit = std::strtoull(l, nullptr, 10);
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto parsed = hashsieve::digest::parse_sdbf_lines(ss.str());
    if (!in || !parsed) {
      std::cerr << "cannot load " << path << ": " << (parsed ? "read error" : parsed.error().message()) << "\n";
      std::exit(1);
    }
    std::vector<Sdbf> d = std::move(parsed).value();
    if (d.size() > limit) d.erase(d.begin() + static_cast<std::ptrdiff_t>(limit), d.end());
    std::size_t filters = 0;
    for (const Sdbf& s : d) filters += s.filter_count();
    std::cerr << "sdbf set: " << path << ": " << d.size() << " digests, " << filters << " filters\n";
    return d;
  }();
  return set;
}

// `prepared`: PreparedSdbf values built once outside the timed loop (what a
// comparison command does), otherwise sdbf_score on the plain digests.
void BM_SdbfAllPairs(benchmark::State& state, CompareKernel kernel, bool prepared) {
  if (!hashsieve::digest::sdbf_internal::set_compare_kernel(kernel)) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const auto& d = digest_set();
  const auto p = hashsieve::digest::prepare_sdbfs(d);
  std::uint64_t comparisons = 0;
  std::uint64_t pairs = 0;
  for (auto _ : state) {
    long checksum = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      for (std::size_t j = i + 1; j < d.size(); ++j) {
        checksum += prepared ? hashsieve::digest::sdbf_score_counted(p[i], p[j], &comparisons)
                             : hashsieve::digest::sdbf_score_counted(d[i], d[j], &comparisons);
      }
    }
    pairs += d.size() * (d.size() - 1) / 2;
    benchmark::DoNotOptimize(checksum);
  }
  state.counters["filter_cmp/s"] = benchmark::Counter(static_cast<double>(comparisons), benchmark::Counter::kIsRate);
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["filter_cmp/iter"] =
      benchmark::Counter(static_cast<double>(comparisons), benchmark::Counter::kAvgIterations);
  hashsieve::digest::sdbf_internal::set_compare_kernel(CompareKernel::automatic);
}

// PreparedSdbfSet, one sdbf_score_row call per row (what `digest compare`
// does), built outside the timed loop.
void BM_SdbfAllPairsSet(benchmark::State& state, CompareKernel kernel) {
  if (!hashsieve::digest::sdbf_internal::set_compare_kernel(kernel)) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const auto& d = digest_set();
  const hashsieve::digest::PreparedSdbfSet set(d);
  std::vector<int> row(d.size());
  std::uint64_t comparisons = 0;
  std::uint64_t pairs = 0;
  for (auto _ : state) {
    long checksum = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      const std::span<int> out = std::span<int>(row).first(d.size() - i - 1);
      hashsieve::digest::sdbf_score_row(set, i, set, i + 1, out, &comparisons);
      for (const int s : out) checksum += s;
    }
    pairs += d.size() * (d.size() - 1) / 2;
    benchmark::DoNotOptimize(checksum);
  }
  state.counters["filter_cmp/s"] = benchmark::Counter(static_cast<double>(comparisons), benchmark::Counter::kIsRate);
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["filter_cmp/iter"] =
      benchmark::Counter(static_cast<double>(comparisons), benchmark::Counter::kAvgIterations);
  hashsieve::digest::sdbf_internal::set_compare_kernel(CompareKernel::automatic);
}

BENCHMARK_CAPTURE(BM_SdbfAllPairs, scalar, CompareKernel::scalar, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdbfAllPairs, popcnt, CompareKernel::popcnt, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdbfAllPairs, avx512, CompareKernel::avx512, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdbfAllPairs, prepared_popcnt, CompareKernel::popcnt, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdbfAllPairs, prepared_avx512, CompareKernel::avx512, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SdbfAllPairsSet, set_avx512, CompareKernel::avx512)->Unit(benchmark::kMillisecond);

// Parsing cost of the same file, for scale.
void BM_SdbfParseSet(benchmark::State& state) {
  const std::string path = set_path();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  for (auto _ : state) {
    auto parsed = hashsieve::digest::parse_sdbf_lines(text);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_SdbfParseSet)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
