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

#include "hashsieve/core/file.h"
#include "hashsieve/digest/tlsh.h"

namespace {

struct Mix {
  std::vector<hashsieve::MappedFile> files;
  std::uint64_t total_bytes = 0;
};

// Maps every file of the list once and touches each page, so the runs
// measure hashing rather than page faults.
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
      if (!f.ok()) continue;  // unreadable entries are skipped, as every bench does
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
