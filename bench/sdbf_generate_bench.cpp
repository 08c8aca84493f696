// SDBF generation throughput over the mix (real /usr/lib files, see
// bench/make_mix.sh), with OpenSSL's SHA-1 over the same bytes as the ceiling
// to compare against. Run with HASHSIEVE_MIX_LIST=/tmp/mix.list.
#include <openssl/evp.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/digest/sdbf_scan.h"
#include "../src/digest/sha1_feature.h"
#include "bench_mix.h"
#include "hashsieve/digest/sdbf_generator.h"

namespace {

using hashsieve::digest::SdbfGenerator;

using hashsieve::bench::Mix;
using hashsieve::bench::mix;

// Hashes files i = first, first+step, ... with one generator; returns the
// number of filters made (kept live so nothing is optimised away).
std::size_t hash_files(SdbfGenerator& gen, std::size_t first, std::size_t step,
                       std::uint32_t block_size) {
  const Mix& m = mix();
  std::size_t filters = 0;
  for (std::size_t i = first; i < m.files.size(); i += step) {
    auto d = block_size == 0 ? gen.stream("f", m.files[i].bytes())
                             : gen.block("f", m.files[i].bytes(), block_size);
    if (d) filters += d->filter_count();
  }
  return filters;
}

void BM_SdbfStreamMix(benchmark::State& state) {
  mix();  // load outside the timed loop
  SdbfGenerator gen;
  for (auto _ : state) benchmark::DoNotOptimize(hash_files(gen, 0, 1, 0));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(mix().total_bytes));
}
BENCHMARK(BM_SdbfStreamMix)->Unit(benchmark::kMillisecond)->UseRealTime();

// Files interleaved across 2 threads (the reference's file-parallel mode).
void BM_SdbfStreamMix2Threads(benchmark::State& state) {
  mix();
  SdbfGenerator gens[2];
  for (auto _ : state) {
    std::size_t filters[2] = {};
    std::thread t([&] { filters[1] = hash_files(gens[1], 1, 2, 0); });
    filters[0] = hash_files(gens[0], 0, 2, 0);
    t.join();
    benchmark::DoNotOptimize(filters);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(mix().total_bytes));
}
BENCHMARK(BM_SdbfStreamMix2Threads)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SdbfBlock16KMix(benchmark::State& state) {
  mix();
  SdbfGenerator gen;
  for (auto _ : state) benchmark::DoNotOptimize(hash_files(gen, 0, 1, 16384));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(mix().total_bytes));
}
BENCHMARK(BM_SdbfBlock16KMix)->Unit(benchmark::kMillisecond)->UseRealTime();

// The ceiling: OpenSSL EVP SHA-1 over the same bytes, one file at a time.
void BM_OpenSslSha1Mix(benchmark::State& state) {
  const Mix& m = mix();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char out[EVP_MAX_MD_SIZE];
  for (auto _ : state) {
    for (const hashsieve::bench::MixFile& f : m.files) {
      EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
      EVP_DigestUpdate(ctx, f.bytes().data(), f.size());
      unsigned int n = 0;
      EVP_DigestFinal_ex(ctx, out, &n);
      benchmark::DoNotOptimize(out);
    }
  }
  EVP_MD_CTX_free(ctx);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.total_bytes));
}
BENCHMARK(BM_OpenSslSha1Mix)->Unit(benchmark::kMillisecond)->UseRealTime();

// Breakdown: the rank pass alone, and rank + popularity scan.
void BM_SdbfRanksMix(benchmark::State& state) {
  const Mix& m = mix();
  std::vector<std::uint16_t> rank;
  std::vector<std::uint8_t> score;
  const bool scores = state.range(0) != 0;
  for (auto _ : state) {
    for (const hashsieve::bench::MixFile& f : m.files) {
      if (rank.size() < f.size()) {
        rank.resize(f.size());
        score.resize(f.size());
      }
      hashsieve::digest::sdbf_ranks(f.bytes().data(), f.size(), rank.data());
      if (scores) hashsieve::digest::sdbf_scores(rank.data(), f.size(), score.data());
      benchmark::DoNotOptimize(rank.data());
      benchmark::DoNotOptimize(score.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.total_bytes));
}
BENCHMARK(BM_SdbfRanksMix)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Scores alone over ranks computed beforehand (the serial scan in isolation).
void BM_SdbfScoresMix(benchmark::State& state) {
  const Mix& m = mix();
  static const std::vector<std::vector<std::uint16_t>> ranks = [&] {
    std::vector<std::vector<std::uint16_t>> r;
    for (const hashsieve::bench::MixFile& f : m.files) {
      r.emplace_back(f.size());
      hashsieve::digest::sdbf_ranks(f.bytes().data(), f.size(), r.back().data());
    }
    return r;
  }();
  std::vector<std::uint8_t> score;
  for (auto _ : state) {
    for (const auto& r : ranks) {
      if (score.size() < r.size()) score.resize(r.size());
      hashsieve::digest::sdbf_scores(r.data(), r.size(), score.data());
      benchmark::DoNotOptimize(score.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.total_bytes));
}
BENCHMARK(BM_SdbfScoresMix)->Unit(benchmark::kMillisecond)->UseRealTime();

// SHA-1 of 64-byte features alone (the generator's third-largest cost), one,
// two or four features per call (arg), over 64 Ki windows at random sorted
// offsets of a 4 MiB random buffer, as stream mode hashes its candidates.
// items_per_second is features per second; compare new feature kernels here.
void BM_Sha1Features(benchmark::State& state) {
  namespace d = hashsieve::digest;
  constexpr std::size_t kFeatures = std::size_t{1} << 16;
  std::vector<std::uint8_t> buf(std::size_t{4} << 20);
  std::uint32_t x = 12345;
  auto next = [&x] { return x = x * 1103515245u + 12345u; };
  for (auto& b : buf) b = static_cast<std::uint8_t>(next() >> 24);
  std::vector<std::uint32_t> off(kFeatures);
  for (auto& o : off) o = next() % static_cast<std::uint32_t>(buf.size() - 64);
  std::sort(off.begin(), off.end());
  const std::uint8_t* p = buf.data();
  const auto lanes = static_cast<std::size_t>(state.range(0));
  std::uint8_t out[4][d::kSha1DigestBytes];
  for (auto _ : state) {
    for (std::size_t k = 0; k < kFeatures; k += lanes) {
      if (lanes == 4) {
        d::sha1_feature_x4({p + off[k], p + off[k + 1], p + off[k + 2], p + off[k + 3]},
                           {out[0], out[1], out[2], out[3]});
      } else if (lanes == 2) {
        d::sha1_feature_x2(p + off[k], p + off[k + 1], out[0], out[1]);
      } else {
        d::sha1_feature(p + off[k], out[0]);
      }
      benchmark::DoNotOptimize(out);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kFeatures));
}
BENCHMARK(BM_Sha1Features)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
