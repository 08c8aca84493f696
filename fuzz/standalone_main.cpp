// Driver that runs a libFuzzer target without libFuzzer, so every fuzz target
// also runs in the ordinary test suite (and under the asan preset):
//   TARGET [--mutations N] FILE_OR_DIR...
// Each seed file is fed as is, then N deterministic mutations of it (byte
// flips, truncations, insertions, splices with other seeds). A crash, a
// sanitizer report or an abort fails the test.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const std::vector<std::uint8_t>& input) { LLVMFuzzerTestOneInput(input.data(), input.size()); }

}  // namespace

int main(int argc, char** argv) {
  long mutations = 0;
  std::vector<std::vector<std::uint8_t>> seeds;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--mutations" && i + 1 < argc) {
      mutations = std::strtol(argv[++i], nullptr, 10);
      continue;
    }
    std::filesystem::path p(arg);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) seeds.push_back(read_file(e.path()));
      }
    } else if (std::filesystem::is_regular_file(p)) {
      seeds.push_back(read_file(p));
    } else {
      std::fprintf(stderr, "seed path %s does not exist\n", arg.c_str());
      return 2;
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "no seed inputs\n");
    return 2;
  }
  std::mt19937_64 rng(0x5eed);  // fixed: a failure must be reproducible
  long runs = 0;
  for (const auto& seed : seeds) {
    run(seed);
    ++runs;
    for (long m = 0; m < mutations; ++m) {
      std::vector<std::uint8_t> x = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const std::size_t pos = x.empty() ? 0 : rng() % x.size();
        switch (rng() % 6) {
          case 0: if (!x.empty()) x[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
          case 1: if (!x.empty()) x[pos] = static_cast<std::uint8_t>(rng()); break;
          case 2: x.resize(pos); break;
          case 3: x.insert(x.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<std::uint8_t>("0:9a\n=-"[rng() % 7])); break;
          case 4: if (!x.empty()) x.erase(x.begin() + static_cast<std::ptrdiff_t>(pos)); break;
          case 5: {
            const auto& other = seeds[rng() % seeds.size()];
            if (!other.empty()) {
              const std::size_t from = rng() % other.size();
              x.insert(x.begin() + static_cast<std::ptrdiff_t>(pos), other.begin() + static_cast<std::ptrdiff_t>(from),
                       other.begin() + static_cast<std::ptrdiff_t>(std::min(other.size(), from + 64)));
            }
            break;
          }
        }
      }
      run(x);
      ++runs;
    }
  }
  std::printf("%ld inputs ran without a crash\n", runs);
  return 0;
}
