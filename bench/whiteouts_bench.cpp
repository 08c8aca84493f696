// apply_whiteouts over a synthetic image: 1,000,000 changes in 5 layers
// (a 600k-entry base and four 100k-entry updates mixing replacements,
// whiteouts, opaque directories and new files).
//   build/release/bench/whiteouts_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/image/whiteouts.h"

namespace {

using hashsieve::image::EntryKind;
using hashsieve::image::LayerChange;

std::vector<std::vector<LayerChange>> make_image() {
  std::mt19937_64 rng(42);
  auto dir_of = [](std::uint64_t d) {
    return "usr/lib/pkg" + std::to_string(d / 64) + "/share/sub" + std::to_string(d % 64);
  };
  constexpr std::uint64_t kDirs = 20000;
  std::vector<std::vector<LayerChange>> layers(5);
  std::vector<std::string> base_files;
  // Layer 0: directories, then 30 files each (600k entries in all).
  for (std::uint64_t d = 0; d < kDirs; ++d) layers[0].push_back({dir_of(d), EntryKind::directory});
  while (layers[0].size() < 600000) {
    const std::string path = dir_of(rng() % kDirs) + "/file" + std::to_string(layers[0].size()) + ".so";
    layers[0].push_back({path, EntryKind::regular});
    base_files.push_back(path);
  }
  for (std::size_t l = 1; l < 5; ++l) {
    auto& layer = layers[l];
    while (layer.size() < 100000) {
      const std::uint64_t r = rng() % 1000;
      if (r < 300) {
        layer.push_back({base_files[rng() % base_files.size()], EntryKind::regular});  // replaced file
      } else if (r < 350) {
        layer.push_back({base_files[rng() % base_files.size()], EntryKind::whiteout});
      } else if (r < 351) {
        layer.push_back({dir_of(rng() % kDirs), EntryKind::opaque_whiteout});
      } else if (r < 352) {
        layer.push_back({dir_of(rng() % kDirs), EntryKind::whiteout});  // a whole directory removed
      } else {
        layer.push_back({dir_of(rng() % kDirs) + "/new" + std::to_string(l) + "_" + std::to_string(layer.size()),
                         EntryKind::regular});
      }
    }
  }
  return layers;
}

void BM_ApplyWhiteouts1M(benchmark::State& state) {
  const auto layers = make_image();
  std::size_t hidden = 0;
  for (auto _ : state) {
    const auto result = hashsieve::image::apply_whiteouts(layers);
    hidden = 0;
    for (const auto& layer : result) {
      for (const auto& h : layer) hidden += h.has_value();
    }
    benchmark::DoNotOptimize(hidden);
  }
  state.counters["hidden"] = static_cast<double>(hidden);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000000);
}
BENCHMARK(BM_ApplyWhiteouts1M)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
