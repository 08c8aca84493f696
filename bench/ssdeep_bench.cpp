// ssdeep (libfuzzy) throughput over the benchmark mix, for reference.
//   bench/make_mix.sh > /tmp/mix.list
//   HASHSIEVE_MIX_LIST=/tmp/mix.list build/release/bench/ssdeep_bench
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bench_mix.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/ssdeep.h"

namespace {

using hashsieve::bench::Mix;
using hashsieve::bench::mix;

// `announce` = 1 tells libfuzzy the length first (what a file hasher does).
void BM_Ssdeep(benchmark::State& state) {
  const Mix& m = mix();
  const bool announce = state.range(0) != 0;
  for (auto _ : state) {
    for (const auto& f : m.files) {
      hashsieve::digest::SsdeepHasher h;
      if (announce) h.set_expected_length(f.size());
      h.update(f.bytes());
      auto d = h.finish();
      benchmark::DoNotOptimize(d);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.total_bytes));
}

BENCHMARK(BM_Ssdeep)->ArgName("announce")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
