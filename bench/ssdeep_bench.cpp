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

#include "hashsieve/core/file.h"
#include "hashsieve/digest/ssdeep.h"

namespace {

struct Mix {
  std::vector<hashsieve::MappedFile> files;
  std::uint64_t total_bytes = 0;
};

// Maps every listed file once and touches each page, so the runs measure
// hashing rather than page faults.
const Mix& mix() {
  static const Mix m = [] {
    Mix out;
    const char* list = std::getenv("HASHSIEVE_MIX_LIST");
    if (list == nullptr) {
      std::fprintf(stderr, "set HASHSIEVE_MIX_LIST (bench/make_mix.sh > /tmp/mix.list)\n");
      std::exit(2);
    }
    std::ifstream in(list);
    std::string path;
    unsigned sink = 0;
    while (std::getline(in, path)) {
      auto f = hashsieve::MappedFile::open(path);
      if (!f.ok()) continue;
      for (std::size_t i = 0; i < f->size(); i += 4096) sink += f->bytes()[i];
      out.total_bytes += f->size();
      out.files.push_back(std::move(f).value());
    }
    benchmark::DoNotOptimize(sink);
    if (out.files.empty()) {
      std::fprintf(stderr, "no readable files in %s\n", list);
      std::exit(2);
    }
    return out;
  }();
  return m;
}

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
