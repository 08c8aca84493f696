// SDBF comparison against the sdhash 3.4 golden outputs (tests/data/sdhash).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../sdbf_compare_internal.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"

namespace hashsieve::digest {
namespace {

using sdbf_internal::CompareKernel;

const std::string kData = HASHSIEVE_TEST_DATA "/sdhash/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<Sdbf> load(const std::string& path) {
  auto parsed = parse_sdbf_lines(read_text(path));
  EXPECT_TRUE(parsed.ok()) << path << ": " << (parsed.ok() ? "" : parsed.error().message());
  return parsed.ok() ? std::move(parsed).value() : std::vector<Sdbf>{};
}

// Test-local copy of the reference's output line (spec 8.5).
std::string score_line(const Sdbf& a, const Sdbf& b, int score, char sep) {
  char num[16];
  if (score < 0) {
    std::snprintf(num, sizeof num, "%d", score);
  } else {
    std::snprintf(num, sizeof num, "%03d", score);
  }
  return a.name() + sep + b.name() + sep + num;
}

// `sdhash -c file1 [file2] -t threshold`: i<j pairs of one file, or file1 as
// the outer loop against file2. Scores through sdbf_score on the digests, or
// on PreparedSdbf values when `prepared`.
enum class Mode { plain, prepared, set_row, set_pair };

// `set_row` and `set_pair` use PreparedSdbfSet (one set, or two for a second
// file) through sdbf_score_row and the per-pair sdbf_score.
std::vector<std::string> run_compare(const std::vector<Sdbf>& first, const std::vector<Sdbf>* second,
                                     int threshold, char sep, Mode mode) {
  const std::vector<Sdbf>& other = second != nullptr ? *second : first;
  const auto pf = prepare_sdbfs(first);
  const auto po = prepare_sdbfs(other);
  const PreparedSdbfSet sf(first);
  const std::optional<PreparedSdbfSet> so = second != nullptr ? std::optional<PreparedSdbfSet>(other) : std::nullopt;
  const PreparedSdbfSet& st = so ? *so : sf;
  std::vector<std::string> out;
  std::vector<int> row(other.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    const std::size_t from = second != nullptr ? 0 : i + 1;
    if (mode == Mode::set_row) sdbf_score_row(sf, i, st, from, std::span<int>(row).first(other.size() - from));
    for (std::size_t j = from; j < other.size(); ++j) {
      int s = 0;
      switch (mode) {
        case Mode::plain: s = sdbf_score(first[i], other[j]); break;
        case Mode::prepared: s = sdbf_score(pf[i], po[j]); break;
        case Mode::set_row: s = row[j - from]; break;
        case Mode::set_pair: s = sdbf_score(sf, i, st, j); break;
      }
      if (s >= threshold) out.push_back(score_line(first[i], other[j], s, sep));
    }
  }
  return out;
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::plain: return "plain";
    case Mode::prepared: return "prepared";
    case Mode::set_row: return "set_row";
    case Mode::set_pair: return "set_pair";
  }
  return "?";
}

std::vector<CompareKernel> kernels() {
  std::vector<CompareKernel> ks = {CompareKernel::scalar};
  if (sdbf_internal::kernel_supported(CompareKernel::popcnt)) ks.push_back(CompareKernel::popcnt);
  if (sdbf_internal::kernel_supported(CompareKernel::avx512)) ks.push_back(CompareKernel::avx512);
  return ks;
}

const char* kernel_name(CompareKernel k) {
  switch (k) {
    case CompareKernel::automatic: return "automatic";
    case CompareKernel::scalar: return "scalar";
    case CompareKernel::popcnt: return "popcnt";
    case CompareKernel::avx512: return "avx512";
  }
  return "?";
}

// Restores the automatic kernel choice when a test ends.
struct KernelGuard {
  ~KernelGuard() { sdbf_internal::set_compare_kernel(CompareKernel::automatic); }
};

TEST(SdbfCompare, ExpectedTableMatchesGoldenFile) {
  const auto lines = read_lines(kData + "expected_common_table.txt");
  ASSERT_EQ(lines.size(), sdbf_internal::kExpectedSize);
  for (std::uint32_t s1 = 0; s1 < lines.size(); ++s1) {
    std::istringstream row(lines[s1]);
    std::uint32_t s2 = 0;
    for (std::uint32_t v; row >> v; ++s2) {
      ASSERT_LT(s2, sdbf_internal::kExpectedSize);
      ASSERT_EQ(sdbf_internal::expected_common(s1, s2), v) << "s1=" << s1 << " s2=" << s2;
    }
    ASSERT_EQ(s2, sdbf_internal::kExpectedSize) << "row " << s1;
  }
}

TEST(SdbfCompare, ReproducesReferenceOutputs) {
  struct Case {
    std::string file1;
    std::optional<std::string> file2;
    int threshold;
    char sep;
    std::string expected;
  };
  const std::string e = "expected/";
  const std::string s = "synthetic/expected/";
  const Case cases[] = {
      {e + "all.sdbf", {}, 0, '|', e + "compare.txt"},
      {e + "all.sdbf", {}, 1, '|', e + "compare_default_t1.txt"},
      {e + "all.sdbf", {}, 50, ',', e + "compare_csv_t50.txt"},
      {e + "all_nonzero.b16.sdbf", {}, 0, '|', e + "compare_b16_t0.txt"},
      {e + "all.sdbf", e + "all_nonzero.b16.sdbf", 0, '|', e + "compare_stream_vs_b16_t0.txt"},
      {e + "edge_a.b4.sdbf", e + "edge_b.b4.sdbf", -1, '|', e + "compare_b4_edge_tm1.txt"},
      {s + "stream.sdbf", {}, -1, '|', s + "compare_stream.txt"},
      {s + "stream.sdbf", s + "stream.sdbf", -1, '|', s + "compare_stream_x_stream.txt"},
      {s + "b4_cmp.sdbf", {}, -1, '|', s + "compare_b4.txt"},
      {s + "stream.sdbf", s + "b4_cmp.sdbf", -1, '|', s + "compare_stream_x_b4.txt"},
  };
  KernelGuard guard;
  for (const CompareKernel k : kernels()) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    for (const Mode mode : {Mode::plain, Mode::prepared, Mode::set_row, Mode::set_pair}) {
      for (const Case& c : cases) {
        SCOPED_TRACE(std::string(kernel_name(k)) + " " + mode_name(mode) + " " + c.expected);
        const auto first = load(kData + c.file1);
        ASSERT_FALSE(first.empty());
        std::vector<Sdbf> second;
        if (c.file2) {
          second = load(kData + *c.file2);
          ASSERT_FALSE(second.empty());
        }
        const auto got = run_compare(first, c.file2 ? &second : nullptr, c.threshold, c.sep, mode);
        const auto want = read_lines(kData + c.expected);
        ASSERT_FALSE(want.empty());
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
          if (got[i] != want[i] && ++mismatches <= 5) ADD_FAILURE() << "line " << i + 1 << ": got " << got[i] << ", want " << want[i];
        }
        EXPECT_EQ(mismatches, 0u);
        EXPECT_EQ(got.size(), want.size());
      }
    }
  }
}

// Where the reference divides 0 by 0 and aborts (every filter of a
// multi-filter reference side is sparse), we give -1.
TEST(SdbfCompare, ReferenceCrashCasesGiveMinusOne) {
  KernelGuard guard;
  const auto zeros = load(kData + "expected/zeros_64k.bin.b4.sdbf");
  ASSERT_EQ(zeros.size(), 1u);
  ASSERT_GT(zeros[0].filter_count(), 1u);

  const auto all_b4 = load(kData + "synthetic/expected/b4.sdbf");
  const auto excluded = read_lines(kData + "synthetic/expected/b4_cmp_excluded.txt");
  const auto targets = load(kData + "synthetic/expected/b4_cmp.sdbf");
  ASSERT_EQ(excluded.size(), 10u);

  for (const CompareKernel k : kernels()) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    SCOPED_TRACE(kernel_name(k));
    EXPECT_EQ(sdbf_score(zeros[0], zeros[0]), -1);
    for (const std::string& name : excluded) {
      SCOPED_TRACE(name);
      const Sdbf* ref = nullptr;
      for (const Sdbf& d : all_b4) {
        if (d.name() == name) ref = &d;
      }
      ASSERT_NE(ref, nullptr);
      EXPECT_EQ(sdbf_score(*ref, *ref), -1);
      EXPECT_EQ(sdbf_score(PreparedSdbf(*ref), PreparedSdbf(*ref)), -1);
      const PreparedSdbfSet ref_set(std::span<const Sdbf>(ref, 1));
      EXPECT_EQ(sdbf_score(ref_set, 0, ref_set, 0), -1);
      std::size_t checked = 0;
      for (const Sdbf& t : targets) {
        // More target filters make `ref` the reference side in either order.
        if (t.filter_count() <= ref->filter_count()) continue;
        EXPECT_EQ(sdbf_score(*ref, t), -1) << t.name();
        EXPECT_EQ(sdbf_score(t, *ref), -1) << t.name();
        EXPECT_EQ(sdbf_score(PreparedSdbf(t), PreparedSdbf(*ref)), -1) << t.name();
        const PreparedSdbfSet t_set(std::span<const Sdbf>(&t, 1));
        EXPECT_EQ(sdbf_score(t_set, 0, ref_set, 0), -1) << t.name();
        EXPECT_EQ(sdbf_score(ref_set, 0, t_set, 0), -1) << t.name();
        ++checked;
      }
      EXPECT_GT(checked, 0u);
    }
  }
}

Sdbf block_digest(std::string name, std::vector<std::uint16_t> counts) {
  // Filters with a few distinct bits each, so weights are non-zero.
  std::vector<std::uint64_t> words(counts.size() * kSdbfFilterWords, 0);
  for (std::size_t i = 0; i < counts.size(); ++i) words[i * kSdbfFilterWords + (i % kSdbfFilterWords)] = 0xF0F0F0F0F0F0F0F0ull;
  return Sdbf::from_blocks(std::move(name), counts.size() * 4096, 4096, std::move(words), std::move(counts));
}

TEST(SdbfCompare, CountsEligibleFilterComparisons) {
  struct Case {
    const char* what;
    std::vector<std::uint16_t> a, b;
    std::uint64_t want;
  };
  const Case cases[] = {
      // A (3 filters) is the reference: sparse A filters and, because A has
      // more than one filter, sparse B filters are skipped: 2 x 2.
      {"multi reference skips sparse targets", {20, 5, 30}, {16, 3, 40, 2}, 4},
      {"same pair, presented reversed", {16, 3, 40, 2}, {20, 5, 30}, 4},
      // A single-filter reference compares against every target filter.
      {"single reference takes sparse targets", {20}, {16, 3, 0}, 3},
      {"sparse single reference compares nothing", {15}, {16, 3, 0}, 0},
      {"no eligible target", {20, 30}, {1, 2, 3}, 0},
      // Wide targets take the SIMD path (16-lane blocks plus a partial one).
      {"wide target", {100, 100, 100, 100, 7}, {50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
                                                 50, 50, 50, 2, 2, 2}, 80},
  };
  KernelGuard guard;
  for (const CompareKernel k : kernels()) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(kernel_name(k)) + " " + c.what);
      const Sdbf a = block_digest("a", c.a);
      const Sdbf b = block_digest("b", c.b);
      std::uint64_t n = 0;
      (void)sdbf_score_counted(a, b, &n);
      EXPECT_EQ(n, c.want);
      (void)sdbf_score_counted(a, b, &n);
      EXPECT_EQ(n, 2 * c.want) << "the count accumulates";
      n = 0;
      (void)sdbf_score_counted(PreparedSdbf(a), PreparedSdbf(b), &n);
      EXPECT_EQ(n, c.want) << "prepared";
      const std::vector<Sdbf> both = {a, b};
      const PreparedSdbfSet set(both);
      n = 0;
      (void)sdbf_score_counted(set, 0, set, 1, &n);
      EXPECT_EQ(n, c.want) << "set";
      (void)sdbf_score_counted(set, 1, set, 0, &n);
      EXPECT_EQ(n, 2 * c.want) << "set, reversed";
    }
  }
}

// Many-filter pairs exercise the SIMD path's 16-lane blocks and padding; the
// scalar kernel must agree on every pair, in both presentation orders.
TEST(SdbfCompare, KernelsAgreeOnManyFilterDigests) {
  if (!sdbf_internal::kernel_supported(CompareKernel::avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  KernelGuard guard;
  const auto digests = load(kData + "synthetic/expected/b1.sdbf");
  ASSERT_GT(digests.size(), 100u);
  std::vector<int> scalar, simd;
  std::uint64_t n_scalar = 0, n_simd = 0;
  for (const CompareKernel k : {CompareKernel::scalar, CompareKernel::avx512}) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    auto& out = k == CompareKernel::scalar ? scalar : simd;
    auto& n = k == CompareKernel::scalar ? n_scalar : n_simd;
    const auto prepared = prepare_sdbfs(digests);
    for (std::size_t i = 0; i < digests.size(); i += 3) {
      for (std::size_t j = 0; j < digests.size(); j += 2) {
        out.push_back(sdbf_score_counted(digests[i], digests[j], &n));
        out.push_back(sdbf_score_counted(prepared[i], prepared[j], &n));
      }
    }
  }
  EXPECT_EQ(scalar, simd);
  EXPECT_EQ(n_scalar, n_simd);
  EXPECT_GT(n_simd, 0u);
}

// Random digests of mixed sizes (1 to 40 filters, dense, sparse and empty
// filters, correlated bits so pairs survive the early exits, equal filter
// counts and names so every orientation rule is taken): PreparedSdbfSet must
// agree with sdbf_score on the plain digests under every kernel, in both
// presentation orders, within one set and across two sets.
std::vector<Sdbf> random_digests(std::size_t count, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> shared(kSdbfFilterWords * 8);
  for (auto& w : shared) w = rng() & rng();
  std::vector<Sdbf> out;
  for (std::size_t d = 0; d < count; ++d) {
    const std::size_t roll = rng() % 16;
    const std::size_t n = roll < 8 ? 1 + rng() % 2 : roll < 13 ? 3 + rng() % 5 : roll < 15 ? 8 + rng() % 12 : 20 + rng() % 21;
    std::vector<std::uint64_t> words(n * kSdbfFilterWords);
    std::vector<std::uint16_t> counts(n);
    // All-sparse digests give -1 (and the reference's crash case).
    const bool all_sparse = rng() % 10 == 0;
    for (std::size_t f = 0; f < n; ++f) {
      const std::uint64_t kind = all_sparse ? 0 : rng() % 8;
      counts[f] = static_cast<std::uint16_t>(kind == 0 ? rng() % 16 : kind == 1 ? 16 + rng() % 20 : 100 + rng() % 93);
      const std::uint64_t* base = shared.data() + (rng() % 8) * kSdbfFilterWords;
      for (std::size_t k = 0; k < kSdbfFilterWords; ++k) {
        std::uint64_t w = kind == 0 ? rng() & rng() & rng() : (rng() % 4 == 0 ? rng() & rng() : base[k] | (rng() & rng() & rng()));
        if (kind == 7 && rng() % 2 == 0) w = 0;
        words[f * kSdbfFilterWords + k] = w;
      }
    }
    // Few distinct names, so equal names occur (GCC 12 warns falsely on
    // "d" + std::to_string(...), hence the append).
    std::string name = "d";
    name.append(std::to_string(rng() % (count / 2 + 1)));
    if (rng() % 3 == 0) {
      out.push_back(Sdbf::from_blocks(std::move(name), n * 4096, 4096, std::move(words), std::move(counts)));
    } else {
      out.push_back(Sdbf::from_stream(std::move(name), n * 4096, std::move(words), counts.back()));
    }
  }
  return out;
}

TEST(SdbfCompare, PreparedSetMatchesPlainScoresOnRandomDigests) {
  KernelGuard guard;
  const auto left = random_digests(150, 1);
  const auto right = random_digests(60, 2);
  const PreparedSdbfSet lset(left);
  const PreparedSdbfSet rset(right);
  ASSERT_EQ(lset.size(), left.size());
  EXPECT_EQ(&lset.digest(3), &left[3]);
  for (const CompareKernel k : kernels()) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    SCOPED_TRACE(kernel_name(k));
    std::uint64_t n_plain = 0, n_set = 0, n_row = 0;
    std::size_t positive = 0, minus_one = 0;
    std::vector<int> row(left.size());
    for (std::size_t i = 0; i < left.size(); ++i) {
      sdbf_score_row(lset, i, lset, 0, std::span<int>(row).first(left.size()), &n_row);
      for (std::size_t j = 0; j < left.size(); ++j) {
        const int want = sdbf_score_counted(left[i], left[j], &n_plain);
        ASSERT_EQ(sdbf_score_counted(lset, i, lset, j, &n_set), want) << i << " " << j;
        ASSERT_EQ(row[j], want) << i << " " << j;
        positive += want > 0 ? 1 : 0;
        minus_one += want < 0 ? 1 : 0;
      }
      for (std::size_t j = 0; j < right.size(); ++j) {
        ASSERT_EQ(sdbf_score(lset, i, rset, j), sdbf_score(left[i], right[j])) << i << " x " << j;
        ASSERT_EQ(sdbf_score(rset, j, lset, i), sdbf_score(right[j], left[i])) << j << " x " << i;
      }
    }
    EXPECT_EQ(n_set, n_plain);
    EXPECT_EQ(n_row, n_plain);
    // The generator must reach the interesting cases.
    EXPECT_GT(positive, 100u);
    EXPECT_GT(minus_one, 0u);
  }
}

// Sets shaped like real ones (mostly one-filter digests) for the row
// kernels of PreparedSdbfSet: one-filter rows scored against all filters of
// the row at once, and several-filter rows against their one-filter targets.
// Counts come from a small pool so last counts tie and names (few distinct)
// decide orientation; sparse (< 16), empty and zero-filter digests occur.
// `ones` of 20 digests have one filter, 1 of 20 none.
std::vector<Sdbf> one_filter_heavy_digests(std::size_t count, std::uint32_t seed, std::size_t ones = 13) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> shared(kSdbfFilterWords * 4);
  for (auto& w : shared) w = rng() & rng();
  const std::uint16_t pool[] = {0, 3, 15, 16, 17, 40, 40, 90, 160, 160, 192};
  std::vector<Sdbf> out;
  for (std::size_t d = 0; d < count; ++d) {
    const std::size_t roll = rng() % 20;
    const std::size_t n = roll == 0 ? 0 : roll <= ones ? 1 : roll < 18 ? 2 + rng() % 6 : 8 + rng() % 30;
    std::vector<std::uint64_t> words(n * kSdbfFilterWords);
    std::vector<std::uint16_t> counts(n);
    for (std::size_t f = 0; f < n; ++f) {
      counts[f] = pool[rng() % std::size(pool)];
      const std::uint64_t* base = shared.data() + (rng() % 4) * kSdbfFilterWords;
      // Density roughly follows the count, so weights and cut-offs vary.
      const int thin = counts[f] < 16 ? 3 : counts[f] < 100 ? 2 : 1;
      for (std::size_t k = 0; k < kSdbfFilterWords; ++k) {
        std::uint64_t noise = rng();
        for (int t = 0; t < thin; ++t) noise &= rng();
        // Sparse filters are mostly subsets of a shared pattern, so they
        // score against the dense filters built on it.
        words[f * kSdbfFilterWords + k] = thin == 3 ? (rng() % 4 == 0 ? noise : base[k] & rng() & rng() & rng())
                                          : rng() % 3 == 0 ? noise
                                                           : (base[k] & (thin > 1 ? rng() : ~0ull)) | noise;
      }
    }
    std::string name = "n";
    name.append(std::to_string(rng() % 7));
    if (n > 0 && rng() % 2 == 0) {
      const std::uint16_t last = counts.back();
      out.push_back(Sdbf::from_stream(std::move(name), n * 4096, std::move(words), last));
    } else {
      out.push_back(Sdbf::from_blocks(std::move(name), n * 4096, 4096, std::move(words), std::move(counts)));
    }
  }
  return out;
}

// Every kernel's rows (whole and partial, within a set and across sets)
// against the portable scalar scores of the plain digests, with the same
// filter-comparison counts.
TEST(SdbfCompare, RowKernelsMatchScalarOnOneFilterHeavySets) {
  KernelGuard guard;
  struct Case {
    std::string name;
    std::vector<Sdbf> left, right;
  };
  std::vector<Case> cases;
  cases.push_back({"random", one_filter_heavy_digests(260, 7), one_filter_heavy_digests(90, 8)});
  cases.push_back({"random, other seed", one_filter_heavy_digests(200, 9), one_filter_heavy_digests(40, 10)});
  // Long runs of one-filter digests (scored 16 pairs at a time).
  cases.push_back({"almost all one-filter", one_filter_heavy_digests(300, 12, 18), one_filter_heavy_digests(50, 13, 18)});
  cases.push_back({"golden stream set", load(kData + "synthetic/expected/stream.sdbf"), load(kData + "expected/all.sdbf")});
  cases.push_back({"golden mixed", load(kData + "expected/all.sdbf"), load(kData + "expected/all_nonzero.b16.sdbf")});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_FALSE(c.left.empty());
    ASSERT_FALSE(c.right.empty());
    // want[i][j]: scalar scores, i in left, j in left then right.
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(CompareKernel::scalar));
    std::vector<std::vector<int>> want(c.left.size());
    std::vector<std::vector<std::uint64_t>> want_n(c.left.size());
    for (std::size_t i = 0; i < c.left.size(); ++i) {
      for (const auto* other : {&c.left, &c.right}) {
        for (const Sdbf& t : *other) {
          std::uint64_t n = 0;
          want[i].push_back(sdbf_score_counted(c.left[i], t, &n));
          want_n[i].push_back(n);
        }
      }
    }
    const PreparedSdbfSet lset(c.left);
    const PreparedSdbfSet rset(c.right);
    std::mt19937 rng(11);
    std::size_t positive = 0;
    for (const CompareKernel k : kernels()) {
      ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
      SCOPED_TRACE(kernel_name(k));
      for (std::size_t i = 0; i < c.left.size(); ++i) {
        for (const bool same : {true, false}) {
          const PreparedSdbfSet& b = same ? lset : rset;
          const std::size_t offset = same ? 0 : c.left.size();
          const std::size_t size = same ? c.left.size() : c.right.size();
          // The whole row, then a random sub-range (unaligned lane ranges).
          const std::size_t from = rng() % size;
          const std::size_t len = rng() % (size - from + 1);
          for (const auto& [first, count] : {std::pair{std::size_t{0}, size}, std::pair{from, len}}) {
            std::vector<int> row(count, -7);
            std::uint64_t got_n = 0, expect_n = 0;
            sdbf_score_row(lset, i, b, first, std::span<int>(row), &got_n);
            for (std::size_t k2 = 0; k2 < count; ++k2) {
              ASSERT_EQ(row[k2], want[i][offset + first + k2]) << "row " << i << " target " << first + k2 << (same ? "" : " (other set)");
              expect_n += want_n[i][offset + first + k2];
              positive += row[k2] > 0 ? 1 : 0;
            }
            EXPECT_EQ(got_n, expect_n) << "row " << i;
          }
        }
      }
    }
    EXPECT_GT(positive, 100u) << "the sets must reach non-zero scores";
  }
}

TEST(SdbfCompare, PreparedSetHandlesEmptyDigestsAndEmptyRows) {
  KernelGuard guard;
  std::vector<Sdbf> set = {Sdbf::from_blocks("empty", 0, 4096, {}, {}), block_digest("a", {20, 40}),
                           block_digest("b", {3})};
  const PreparedSdbfSet p(set);
  for (const CompareKernel k : kernels()) {
    ASSERT_TRUE(sdbf_internal::set_compare_kernel(k));
    for (std::size_t i = 0; i < set.size(); ++i) {
      for (std::size_t j = 0; j < set.size(); ++j) EXPECT_EQ(sdbf_score(p, i, p, j), sdbf_score(set[i], set[j]));
    }
    sdbf_score_row(p, 0, p, 3, std::span<int>());
  }
}

}  // namespace
}  // namespace hashsieve::digest
