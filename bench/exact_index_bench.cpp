// The exact-hash index at NSRL scale: build time and peak memory of
// ExactIndexWriter, bytes per hash of the file, and single-thread lookups
// (half hits, half misses) of the mmap-ed index.
//
//   export HASHSIEVE_BENCH_KEYS=100000000 HASHSIEVE_BENCH_DIR=/tmp
//   taskset -c 1 build/release/bench/exact_index_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// The index is built once per process (or reused if HASHSIEVE_BENCH_DIR holds
// one with the right key count) from keys derived from their ordinal, so no
// key list is held in memory: key i maps to value i, misses come from another
// seed. Build figures are printed to stderr and attached as counters.
//
// BM_Find:     independent find() calls: lookups/s of one thread.
// BM_FindMany: find_many() in batches of 1024 (software prefetching).
// BM_Latency:  lookups serialised by lfence, timed in batches of 16 with
//              steady_clock; p50/p99 of the batch time / 16, in ns.
// Arg 0 = the mmap-ed file (4 KiB pages), 1 = ExactIndexOpenOptions::
// load_into_memory (transparent huge pages).

#include <immintrin.h>
#include <sys/resource.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/refset/exact_index.h"

namespace {

using hashsieve::digest::Md5Digest;
using hashsieve::refset::ExactIndex;
using hashsieve::refset::ExactIndexWriter;
using hashsieve::refset::ExactIndexWriterOptions;

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Md5Digest key_of(std::uint64_t i, std::uint64_t seed) {
  std::array<std::uint8_t, 16> b{};
  const std::uint64_t lo = splitmix(seed ^ (2 * i));
  const std::uint64_t hi = splitmix(seed ^ (2 * i + 1));
  std::memcpy(b.data(), &lo, 8);
  std::memcpy(b.data() + 8, &hi, 8);
  return Md5Digest(b);
}

constexpr std::uint64_t kHitSeed = 0x1234;
constexpr std::uint64_t kMissSeed = 0xABCDEF00ull << 20;
constexpr std::size_t kQueries = 1 << 20;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

struct Fixture {
  std::optional<ExactIndex> index;   // mmap of the page cache
  std::optional<ExactIndex> loaded;  // copy in huge-page memory
  double load_seconds = 0;
  std::uint64_t keys = 0;
  double build_seconds = 0;  // 0: reused an existing file
  double peak_rss_mib = 0;
  std::vector<Md5Digest> queries;  // shuffled, half hits
  std::vector<std::uint32_t> expected;  // value for hits, ~0u for misses
  std::string error;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture out;
    out.keys = env_u64("HASHSIEVE_BENCH_KEYS", 100'000'000);
    const char* dir_env = std::getenv("HASHSIEVE_BENCH_DIR");
    const std::string dir = dir_env != nullptr ? dir_env : std::filesystem::temp_directory_path().string();
    const std::string path = dir + "/exact_index_bench_" + std::to_string(out.keys) + ".idx";

    auto existing = ExactIndex::open(path);
    if (!existing || existing->size() != out.keys) {
      ExactIndexWriterOptions opt;
      opt.temp_dir = dir;
      opt.memory_budget = env_u64("HASHSIEVE_BENCH_BUDGET_MIB", 512) << 20;
      const auto start = std::chrono::steady_clock::now();
      ExactIndexWriter writer(opt);
      for (std::uint64_t i = 0; i < out.keys; ++i) {
        if (auto s = writer.add(key_of(i, kHitSeed), static_cast<std::uint32_t>(i)); !s) {
          out.error = s.error().message();
          return out;
        }
      }
      auto stats = writer.finish(path);
      if (!stats) {
        out.error = stats.error().message();
        return out;
      }
      out.build_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rusage ru{};
      ::getrusage(RUSAGE_SELF, &ru);
      out.peak_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
      std::fprintf(stderr,
                   "exact_index_bench: built %llu keys in %.1f s (%llu runs), peak RSS %.0f MiB, "
                   "%llu bytes\n",
                   static_cast<unsigned long long>(out.keys), out.build_seconds,
                   static_cast<unsigned long long>(stats->runs), out.peak_rss_mib,
                   static_cast<unsigned long long>(stats->file_bytes));
      existing = ExactIndex::open(path);
    }
    if (!existing) {
      out.error = existing.error().message();
      return out;
    }
    out.index.emplace(std::move(existing).value());
    std::fprintf(stderr, "exact_index_bench: %s: %llu keys, %.2f bytes per hash, 2^%u buckets\n",
                 path.c_str(), static_cast<unsigned long long>(out.index->size()),
                 out.index->bytes_per_hash(),
                 out.index->directory_bits(hashsieve::refset::ExactHashType::md5));

    std::mt19937_64 rng(77);
    for (std::size_t q = 0; q < kQueries; ++q) {
      if (q % 2 == 0) {
        const std::uint64_t i = rng() % out.keys;
        out.queries.push_back(key_of(i, kHitSeed));
        out.expected.push_back(static_cast<std::uint32_t>(i));
      } else {
        out.queries.push_back(key_of(rng(), kMissSeed));
        out.expected.push_back(~0u);
      }
    }
    // Shuffle queries and answers together.
    for (std::size_t q = kQueries - 1; q > 0; --q) {
      const std::size_t j = rng() % (q + 1);
      std::swap(out.queries[q], out.queries[j]);
      std::swap(out.expected[q], out.expected[j]);
    }
    const auto load_start = std::chrono::steady_clock::now();
    auto loaded = ExactIndex::open(path, {.load_into_memory = true});
    if (!loaded) {
      out.error = loaded.error().message();
      return out;
    }
    out.loaded.emplace(std::move(loaded).value());
    out.load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    // Warm: touch every query once so the figures are for a resident index.
    for (const auto& k : out.queries) benchmark::DoNotOptimize(out.index->find(k));
    for (const auto& k : out.queries) benchmark::DoNotOptimize(out.loaded->find(k));
    return out;
  }();
  return f;
}

// Arg 0: the mmap-ed file; arg 1: the copy in huge-page memory.
const ExactIndex& pick(const benchmark::State& state, const Fixture& f) {
  return state.range(0) == 0 ? *f.index : *f.loaded;
}

void add_build_counters(benchmark::State& state, const Fixture& f) {
  state.counters["keys"] = static_cast<double>(f.keys);
  if (state.range(0) == 1) state.counters["load_s"] = f.load_seconds;
  state.counters["bytes_per_hash"] = f.index->bytes_per_hash();
  state.counters["build_s"] = f.build_seconds;
  state.counters["build_peak_rss_MiB"] = f.peak_rss_mib;
}

void BM_Find(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const ExactIndex& index = pick(state, f);
  std::size_t q = 0;
  std::uint64_t hits = 0, wrong = 0;
  for (auto _ : state) {
    const auto r = index.find(f.queries[q]);
    hits += r.has_value();
    wrong += r.value_or(~0u) != f.expected[q];
    if (++q == kQueries) q = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hit_ratio"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
  state.counters["wrong"] = static_cast<double>(wrong);
  add_build_counters(state, f);
}
BENCHMARK(BM_Find)->Arg(0)->Arg(1)->Unit(benchmark::kNanosecond);

void BM_FindMany(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const ExactIndex& index = pick(state, f);
  constexpr std::size_t kBatch = 1024;
  std::vector<std::optional<std::uint32_t>> out(kBatch);
  std::size_t q = 0;
  std::uint64_t wrong = 0;
  for (auto _ : state) {
    index.find_many(std::span<const Md5Digest>(f.queries.data() + q, kBatch), out);
    for (std::size_t i = 0; i < kBatch; ++i) wrong += out[i].value_or(~0u) != f.expected[q + i];
    q += kBatch;
    if (q == kQueries) q = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.counters["wrong"] = static_cast<double>(wrong);
  add_build_counters(state, f);
}
BENCHMARK(BM_FindMany)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_Latency(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const ExactIndex& index = pick(state, f);
  constexpr int kChain = 16;
  std::vector<double> per_lookup_ns;
  per_lookup_ns.reserve(1 << 20);
  std::size_t q = 0;
  std::uint64_t sink = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kChain; ++i) {
      const auto r = index.find(f.queries[q]);
      sink += r.value_or(1);
      // lfence waits for every earlier load: the lookups cannot overlap, so
      // the chain time is the sum of the lookup latencies.
      _mm_lfence();
      if (++q == kQueries) q = 0;
    }
    const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    if (per_lookup_ns.size() < per_lookup_ns.capacity()) per_lookup_ns.push_back(ns / kChain);
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kChain));
  std::sort(per_lookup_ns.begin(), per_lookup_ns.end());
  auto pct = [&](double p) {
    return per_lookup_ns.empty() ? 0.0
                                 : per_lookup_ns[static_cast<std::size_t>(p * static_cast<double>(per_lookup_ns.size() - 1))];
  };
  state.counters["p50_ns"] = pct(0.50);
  state.counters["p99_ns"] = pct(0.99);
  state.counters["p999_ns"] = pct(0.999);
  add_build_counters(state, f);
}
BENCHMARK(BM_Latency)->Arg(0)->Arg(1)->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();
