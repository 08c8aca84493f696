// Throughput of the NSRL hash set over the benchmark mix, held in memory so the
// figures measure hashing, not I/O. Every file is fed in 64 KiB chunks (what
// hash_file does with its reads: the chunk stays in L2) and finished, so
// per-file set-up and padding costs are included.
//
//   bench/make_mix.sh > /tmp/mix.list
//   export HASHSIEVE_MIX_LIST=/tmp/mix.list
//   taskset -c 1 build/release/bench/crypto_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// The "MB/s" counter is 10^6 bytes per second.

#include <openssl/evp.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench_mix.h"
#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"

namespace {

using hashsieve::digest::CryptoAlgorithm;
using hashsieve::digest::CryptoBackend;
using hashsieve::digest::CryptoSelection;
using hashsieve::digest::MultiHasher;

constexpr std::size_t kChunk = 64 * 1024;

using hashsieve::bench::Mix;
using hashsieve::bench::mix;

void set_rate(benchmark::State& state, std::size_t bytes) {
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

template <typename Fn>
void for_each_chunk(const hashsieve::bench::MixFile& file, Fn&& fn) {
  const auto bytes = file.bytes();
  for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
    fn(bytes.subspan(at, std::min(kChunk, bytes.size() - at)));
  }
}

const char* backend_label(CryptoBackend b) {
  return b == CryptoBackend::fused ? "fused" : "evp";
}

void run_multi(benchmark::State& state, CryptoSelection sel, CryptoBackend backend) {
  const Mix& m = mix();
  MultiHasher hasher(sel, backend);
  state.SetLabel(backend_label(hasher.backend()));
  for (auto _ : state) {
    for (const auto& file : m.files) {
      for_each_chunk(file, [&](std::span<const std::uint8_t> c) { hasher.update(c); });
      benchmark::DoNotOptimize(hasher.finish());
    }
  }
  set_rate(state, m.total_bytes);
}

// The baseline the fused kernel has to beat: three EVP contexts, each chunk
// hashed by MD5, then SHA-1, then SHA-256.
void BM_Md5Sha1Sha256SequentialEvp(benchmark::State& state) {
  const Mix& m = mix();
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  const EVP_MD* mds[3] = {EVP_md5(), EVP_sha1(), EVP_sha256()};
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx[3];
  for (auto& c : ctx) c.reset(EVP_MD_CTX_new());
  unsigned char out[EVP_MAX_MD_SIZE];
  for (auto _ : state) {
    for (const auto& file : m.files) {
      for (int i = 0; i < 3; ++i) EVP_DigestInit_ex2(ctx[i].get(), mds[i], nullptr);
      for_each_chunk(file, [&](std::span<const std::uint8_t> c) {
        for (auto& x : ctx) EVP_DigestUpdate(x.get(), c.data(), c.size());
      });
      for (auto& x : ctx) EVP_DigestFinal_ex(x.get(), out, nullptr);
      benchmark::DoNotOptimize(out);
    }
  }
  set_rate(state, m.total_bytes);
}

constexpr CryptoSelection kMd5{CryptoAlgorithm::md5};
constexpr CryptoSelection kSha1{CryptoAlgorithm::sha1};
constexpr CryptoSelection kSha256{CryptoAlgorithm::sha256};
constexpr CryptoSelection kCrc32{CryptoAlgorithm::crc32};
constexpr CryptoSelection kThree{CryptoAlgorithm::md5, CryptoAlgorithm::sha1,
                                 CryptoAlgorithm::sha256};

void BM_Md5(benchmark::State& s) { run_multi(s, kMd5, CryptoBackend::automatic); }
void BM_Sha1(benchmark::State& s) { run_multi(s, kSha1, CryptoBackend::automatic); }
void BM_Sha256(benchmark::State& s) { run_multi(s, kSha256, CryptoBackend::automatic); }
void BM_Crc32(benchmark::State& s) { run_multi(s, kCrc32, CryptoBackend::automatic); }
void BM_Md5Sha1Sha256MultiHasher(benchmark::State& s) {
  run_multi(s, kThree, CryptoBackend::automatic);
}
void BM_AllFourMultiHasher(benchmark::State& s) {
  run_multi(s, CryptoSelection::all(), CryptoBackend::automatic);
}
// For comparison: the same selections through MultiHasher's EVP path, and
// single algorithms through the other backend.
void BM_AllFourMultiHasherEvp(benchmark::State& s) {
  run_multi(s, CryptoSelection::all(), CryptoBackend::evp);
}
void BM_Md5Evp(benchmark::State& s) { run_multi(s, kMd5, CryptoBackend::evp); }
void BM_Sha256FusedKernel(benchmark::State& s) { run_multi(s, kSha256, CryptoBackend::fused); }

}  // namespace

BENCHMARK(BM_Md5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sha1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sha256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Crc32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Md5Sha1Sha256SequentialEvp)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Md5Sha1Sha256MultiHasher)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllFourMultiHasher)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllFourMultiHasherEvp)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Md5Evp)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sha256FusedKernel)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
