// TLSH throughput over the benchmark mix: our TlshHasher against Debian's
// libtlsh 3.4.4 (Tlsh::update/final), side by side in one binary.
//   bench/make_mix.sh > /tmp/mix.list
//   HASHSIEVE_MIX_LIST=/tmp/mix.list build/release/bench/tlsh_bench
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <tlsh.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bench_mix.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/tlsh.h"

namespace {

using hashsieve::bench::Mix;
using hashsieve::bench::mix;

// Arg 0: the best kernel for this machine (AVX-512 VBMI where available);
// arg 1: the portable scalar loop.
void BM_TlshOurs(benchmark::State& state) {
  const Mix& m = mix();
  const auto kernel = state.range(0) == 0 ? hashsieve::digest::TlshKernel::best
                                          : hashsieve::digest::TlshKernel::portable;
  if (state.range(0) == 0) {
    state.SetLabel(hashsieve::digest::TlshHasher::vector_kernel_available() ? "avx512-vbmi"
                                                                            : "portable");
  }
  for (auto _ : state) {
    for (const auto& f : m.files) {
      hashsieve::digest::TlshHasher h(kernel);
      h.update(f.bytes());
      auto d = h.finish();
      benchmark::DoNotOptimize(d);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.total_bytes));
}

void BM_TlshLibtlsh(benchmark::State& state) {
  const Mix& m = mix();
  for (auto _ : state) {
    for (const auto& f : m.files) {
      Tlsh t;
      t.update(f.bytes().data(), static_cast<unsigned>(f.size()));
      t.final();
      const char* h = t.getHash();
      benchmark::DoNotOptimize(h);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.total_bytes));
}

BENCHMARK(BM_TlshOurs)->ArgName("portable")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_TlshLibtlsh)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
