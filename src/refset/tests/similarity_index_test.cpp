// The similarity index: content keys, the on-disk index (round trip and
// corrupt files), recall against brute force on real files and mutated
// copies of them, path lookups of built sets, and concurrent lookups.
#include "hashsieve/refset/similarity_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/importer.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// "f12" without `"f" + std::to_string(12)`, which GCC 12 warns about falsely (-Wrestrict).
std::string numbered(char prefix, std::size_t i) {
  std::string s(1, prefix);
  s += std::to_string(i);
  return s;
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

void write_file(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

class SimilarityIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_simidx_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto catalog = RefsetCatalog::open((dir_ / "data").string());
    ASSERT_TRUE(catalog.ok()) << catalog.error().message();
    catalog_.emplace(std::move(catalog).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  LoadedRefset build(const std::string& name, const std::vector<std::string>& paths) {
    BuildRequest request;
    request.name = name;
    request.paths = paths;
    request.threads = 2;
    auto outcome = build_refset(*catalog_, request);
    EXPECT_TRUE(outcome.ok()) << outcome.error().message();
    auto loaded = catalog_->load(name);
    EXPECT_TRUE(loaded.ok()) << loaded.error().message();
    return std::move(loaded).value();
  }

  fs::path dir_;
  std::optional<RefsetCatalog> catalog_;
};

TEST(ContentKeys, SharedContentSharesKeysWhereverItSits) {
  std::mt19937_64 rng(7);
  const Bytes shared = random_bytes(rng, 16384);
  Bytes a = random_bytes(rng, 3000), b = random_bytes(rng, 50000);
  a.insert(a.end(), shared.begin(), shared.end());
  b.insert(b.begin() + 20000, shared.begin(), shared.end());
  const auto ka = sample_content_keys(a), kb = sample_content_keys(b), ks = sample_content_keys(shared);
  ASSERT_TRUE(std::is_sorted(ka.begin(), ka.end()));
  std::vector<std::uint32_t> common;
  std::set_intersection(ka.begin(), ka.end(), kb.begin(), kb.end(), std::back_inserter(common));
  // b (66 KB) keeps 1 in 256 positions: the shared 16 KB gives ~64 keys at
  // b's rate, all of which a (19 KB, a finer rate) also keeps.
  EXPECT_GE(common.size(), 20u);
  std::vector<std::uint32_t> unrelated;
  const auto kc = sample_content_keys(random_bytes(rng, 50000));
  std::set_intersection(ka.begin(), ka.end(), kc.begin(), kc.end(), std::back_inserter(unrelated));
  EXPECT_LE(unrelated.size(), 1u);
  EXPECT_FALSE(ks.empty());
  EXPECT_TRUE(sample_content_keys(Bytes(63, 1)).empty());
  EXPECT_TRUE(sample_content_keys(Bytes(100000, 0)).empty()) << "fill patterns give no keys";
}

TEST_F(SimilarityIndexTest, WrittenIndexAnswersCandidates) {
  SimilarityIndexWriter writer;
  writer.add_sdbf(0, std::vector<std::uint32_t>{5, 9, 0xFFFFFFFF});
  writer.add_sdbf(1, std::vector<std::uint32_t>{9, 12});
  writer.add_sdbf(2, std::vector<std::uint32_t>{12, 5});
  const auto tlsh = digest::TlshDigest::parse("T1" + std::string(70, 'A'));
  ASSERT_TRUE(tlsh.ok());
  writer.add_tlsh(1, *tlsh);
  const std::string path = (dir_ / "similarity.idx").string();
  ASSERT_TRUE(writer.write(path, 3, 2).ok());
  auto index = SimilarityIndex::open(path);
  ASSERT_TRUE(index.ok()) << index.error().message();
  struct Case {
    const char* name;
    std::vector<std::uint32_t> keys;
    unsigned min_shared;
    std::vector<std::uint32_t> want;
  };
  const std::vector<Case> cases = {
      {"one key", {9}, 1, {0, 1}},
      {"two keys", {5, 12}, 1, {0, 1, 2}},
      {"two shared required", {5, 9, 12}, 2, {0, 1, 2}},
      {"two shared, only one has", {9, 0xFFFFFFFF}, 2, {0}},
      {"unknown key", {7}, 1, {}},
      {"no keys", {}, 1, {}},
  };
  std::vector<std::uint32_t> out;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    index->sdbf_candidates(c.keys, out, c.min_shared);
    EXPECT_EQ(out, c.want);
  }
  index->tlsh_candidates(*tlsh, out);
  EXPECT_EQ(out, std::vector<std::uint32_t>{1});
  EXPECT_EQ(index->sdbf_entries(), 3u);
  EXPECT_EQ(index->tlsh_entries(), 2u);
}

// tlsh_candidates against its definition: the entries sharing at least
// min_shared of the query's probe keys and within max_distance of the query
// by tlsh_distance, ascending. Families of close digests give queries
// hundreds of ids (the radix-sorted path); entry ids spread above 2^22 take
// the std::sort path. Headers vary within a family (L value, ratios,
// checksum), so the index's header-distance pruning is exercised too.
TEST_F(SimilarityIndexTest, TlshCandidatesAreTheEntriesSharingProbeKeys) {
  std::mt19937_64 rng(7);
  auto random_body = [&] {
    std::array<std::uint8_t, digest::kTlshBodyBytes> body{};
    for (auto& b : body) b = static_cast<std::uint8_t>(rng());
    return body;
  };
  std::vector<digest::TlshDigest> digests;
  for (int family = 0; family < 6; ++family) {
    const auto base = random_body();
    const auto lvalue = static_cast<std::uint8_t>(rng() % 256);
    for (int i = 0; i < 300; ++i) {
      auto body = base;
      for (std::uint64_t k = rng() % 40; k > 0; --k) {
        const std::size_t pos = rng() % 128;
        const unsigned code = (body[pos / 4] >> (2 * (pos % 4))) & 3u;
        const unsigned next = code == 3 ? 2 : code == 0 ? 1 : (rng() & 1 ? code + 1 : code - 1);
        body[pos / 4] = static_cast<std::uint8_t>((body[pos / 4] & ~(3u << (2 * (pos % 4)))) | (next << (2 * (pos % 4))));
      }
      digests.push_back(digest::TlshDigest::from_fields(static_cast<std::uint8_t>(rng() % 2),
                                                        static_cast<std::uint8_t>(lvalue + rng() % 4),
                                                        static_cast<std::uint8_t>(1 + rng() % 3),
                                                        static_cast<std::uint8_t>(rng() % 16 == 0 ? 15 : 2), body));
    }
  }
  std::vector<std::vector<std::uint32_t>> groups;
  for (const auto& d : digests) groups.push_back(tlsh_group_keys(d));
  struct Case {
    const char* name;
    std::uint32_t id_step;  // entry id of digest i is i * id_step
    unsigned min_shared;
    int max_distance;
  };
  constexpr int kAny = std::numeric_limits<int>::max();
  const std::vector<Case> cases = {
      {"dense ids, one group", 1, 1, kAny},
      {"dense ids, two groups", 1, 2, kAny},
      {"spread ids, one group", 1500, 1, kAny},
      {"spread ids, three groups", 1500, 3, kAny},
      {"ids above 2^22, one group", 3000, 1, kAny},
      {"dense ids, one group, distance 60", 1, 1, kTlshCandidateMaxDistance},
      {"dense ids, two groups, distance 30", 1, 2, 30},
      {"spread ids, one group, distance 45", 1500, 1, 45},
      {"ids above 2^22, one group, distance 60", 3000, 1, 60},
      {"dense ids, distance 0", 1, 1, 0},
      {"dense ids, negative distance", 1, 1, -1},
  };
  std::size_t pruned = 0, kept_near = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SimilarityIndexWriter writer;
    for (std::size_t i = 0; i < digests.size(); ++i) writer.add_tlsh(static_cast<std::uint32_t>(i) * c.id_step, digests[i]);
    const std::string path = (dir_ / "tlsh.idx").string();
    const std::uint32_t entries = static_cast<std::uint32_t>(digests.size()) * c.id_step;
    ASSERT_TRUE(writer.write(path, 0, entries).ok());
    auto index = SimilarityIndex::open(path);
    ASSERT_TRUE(index.ok()) << index.error().message();
    std::vector<std::uint32_t> out;
    std::size_t largest = 0;
    for (std::size_t q = 0; q < digests.size(); q += 37) {
      const auto probe = tlsh_probe_keys(digests[q]);
      const std::set<std::uint32_t> probe_set(probe.begin(), probe.end());
      std::vector<std::uint32_t> want;
      for (std::size_t i = 0; i < digests.size(); ++i) {
        unsigned shared = 0;
        for (const auto k : groups[i]) shared += probe_set.count(k) ? 1 : 0;
        if (shared < c.min_shared) continue;
        const int distance = digest::tlsh_distance(digests[q], digests[i]);
        if (distance <= c.max_distance) {
          want.push_back(static_cast<std::uint32_t>(i) * c.id_step);
          if (c.max_distance != kAny && distance > 0) ++kept_near;
        } else {
          ++pruned;
        }
      }
      index->tlsh_candidates(digests[q], out, c.min_shared, kTlshMaxPostingRead, c.max_distance);
      EXPECT_EQ(out, want) << "query " << q;
      largest = std::max(largest, out.size());
    }
    if (c.max_distance >= kTlshCandidateMaxDistance) {
      EXPECT_GE(largest, 64u) << "some query should have many candidates";
    }
  }
  EXPECT_GT(pruned, 1000u) << "the distance bounds should drop candidates";
  EXPECT_GT(kept_near, 1000u) << "and keep near ones";
}

// Format 2 keeps a header copy in every TLSH posting and the digests
// themselves; a file whose parts disagree, or of the previous format, is
// refused with a message naming the file and the problem.
TEST_F(SimilarityIndexTest, CorruptTlshPartsAreRefusedNamingTheFile) {
  SimilarityIndexWriter writer;
  std::mt19937_64 rng(9);
  for (std::uint32_t e = 0; e < 40; ++e) {
    std::array<std::uint8_t, digest::kTlshBodyBytes> body{};
    for (auto& b : body) b = static_cast<std::uint8_t>(rng());
    writer.add_tlsh(e, digest::TlshDigest::from_fields(static_cast<std::uint8_t>(e), static_cast<std::uint8_t>(rng()), 3, 4,
                                                       body));
  }
  const std::string good_path = (dir_ / "good.idx").string();
  ASSERT_TRUE(writer.write(good_path, 0, 40).ok());
  const Bytes good = read_file(good_path);
  auto u32_at = [&](std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, good.data() + off, 4);
    return v;
  };
  auto u64_at = [&](std::size_t off) {
    std::uint64_t v;
    std::memcpy(&v, good.data() + off, 8);
    return v;
  };
  const std::uint64_t digests = u64_at(72);
  ASSERT_EQ(digests % 64, 0u);
  ASSERT_EQ(good.size(), digests + 40 * 36);
  // The first TLSH posting: after the directory, keys and starts.
  const std::size_t table = u64_at(48 + 16);
  const std::size_t first_posting = table + 4 * ((std::size_t{1} << u32_at(48)) + 1 + 2 * std::size_t{u32_at(48 + 4)} + 1);
  const std::uint32_t first_id = u32_at(first_posting);
  ASSERT_LT(first_id, 40u);
  ASSERT_EQ(u32_at(first_posting + 4), u32_at(digests + 40 * 32 + 4 * first_id));
  auto patched = [&](std::size_t off, std::uint32_t v) {
    Bytes b = good;
    std::memcpy(b.data() + off, &v, 4);
    return b;
  };
  struct Case {
    const char* name;
    Bytes bytes;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"format version 1", patched(8, 1), "unsupported similarity index version (rebuild the set)"},
      {"posting header differs", patched(first_posting + 4, u32_at(first_posting + 4) ^ 0x100), "does not match"},
      {"digest header differs", patched(digests + 40 * 32 + 4 * first_id, u32_at(first_posting + 4) ^ 1),
       "does not match"},
      {"header unused bits", patched(digests + 40 * 32, u32_at(digests + 40 * 32) | 0x80000000u), "unused bits"},
      {"one word per TLSH posting", patched(48 + 12, 1), "words per posting"},
      {"digests misaligned", patched(72, static_cast<std::uint32_t>(digests + 4)), "TLSH digests"},
      {"digests beyond the file", patched(72, static_cast<std::uint32_t>(digests + 64)), "TLSH digests"},
      {"digests truncated", Bytes(good.begin(), good.end() - 4), "TLSH digests"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = (dir_ / "bad.idx").string();
    write_file(path, c.bytes);
    auto index = SimilarityIndex::open(path);
    ASSERT_FALSE(index.ok());
    EXPECT_EQ(index.error().code(), ErrorCode::parse_error);
    EXPECT_NE(index.error().message().find(path), std::string::npos) << index.error().message();
    EXPECT_NE(index.error().message().find(c.want), std::string::npos) << index.error().message();
  }
  // Writing an entry beyond the count is refused before anything is written.
  SimilarityIndexWriter beyond;
  beyond.add_tlsh(5, digest::TlshDigest::from_fields(0, 0, 0, 0, {}));
  const auto st = beyond.write((dir_ / "beyond.idx").string(), 0, 5);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("TLSH entry 5"), std::string::npos) << st.error().message();
}

TEST_F(SimilarityIndexTest, CorruptIndexFilesAreRefusedNamingTheFile) {
  SimilarityIndexWriter writer;
  std::mt19937_64 rng(3);
  for (std::uint32_t e = 0; e < 50; ++e) writer.add_sdbf(e, sample_content_keys(random_bytes(rng, 4096)));
  const std::string good_path = (dir_ / "good.idx").string();
  ASSERT_TRUE(writer.write(good_path, 50, 0).ok());
  const Bytes good = read_file(good_path);
  ASSERT_GT(good.size(), 1000u);
  auto patched = [&](std::size_t off, std::uint32_t v) {
    Bytes b = good;
    std::memcpy(b.data() + off, &v, 4);
    return b;
  };
  struct Case {
    const char* name;
    Bytes bytes;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"empty", {}, "truncated"},
      {"half a header", Bytes(good.begin(), good.begin() + 64), "truncated"},
      {"bad magic", patched(0, 0x11111111), "not a similarity index"},
      {"future version", patched(8, 99), "version"},
      {"truncated table", Bytes(good.begin(), good.end() - 8), "truncated"},
      {"entry out of range", patched(16, 3), "out of range"},
      {"huge directory", patched(24, 40), "directory"},
      {"keys count beyond file", patched(28, 0x7FFFFFFF), "truncated"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = (dir_ / "bad.idx").string();
    write_file(path, c.bytes);
    auto index = SimilarityIndex::open(path);
    ASSERT_FALSE(index.ok());
    EXPECT_EQ(index.error().code(), ErrorCode::parse_error);
    EXPECT_NE(index.error().message().find(path), std::string::npos) << index.error().message();
    EXPECT_NE(index.error().message().find(c.want), std::string::npos) << index.error().message();
  }
}

TEST_F(SimilarityIndexTest, LoadingASetWithACorruptIndexFailsNamingIt) {
  std::mt19937_64 rng(5);
  write_file(dir_ / "root/bin/a", random_bytes(rng, 5000));
  write_file(dir_ / "root/bin/b", random_bytes(rng, 7000));
  build("s", {(dir_ / "root").string()});
  const fs::path idx = dir_ / "data/refsets/s/current/similarity.idx";
  const Bytes good = read_file(idx);
  write_file(idx, Bytes(good.begin(), good.begin() + good.size() / 2));
  auto loaded = catalog_->load("s");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message().find("similarity.idx"), std::string::npos) << loaded.error().message();
}

TEST_F(SimilarityIndexTest, FilesAtPathNameTheRecordedFiles) {
  std::mt19937_64 rng(11);
  const Bytes ls = random_bytes(rng, 3000);
  write_file(dir_ / "root/usr/bin/ls", ls);
  write_file(dir_ / "root/usr/bin/cat", random_bytes(rng, 2000));
  auto set = build("distro", {(dir_ / "root").string()});
  digest::MultiHasher hasher({digest::CryptoAlgorithm::sha256});
  hasher.update(ls);
  const std::string want_sha = hasher.finish().sha256->hex();
  struct Case {
    const char* name;
    std::string path;
    std::size_t want;
  };
  const std::vector<Case> cases = {
      {"absolute", "/usr/bin/ls", 1}, {"relative", "usr/bin/ls", 1}, {"double slash", "//usr/bin/ls", 1},
      {"absent", "/usr/bin/rm", 0},   {"a directory", "/usr/bin", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto files = set.files_at_path(c.path);
    ASSERT_TRUE(files.ok()) << files.error().message();
    ASSERT_EQ(files->size(), c.want);
    if (c.want == 1) {
      EXPECT_EQ((*files)[0].path, "usr/bin/ls");
      EXPECT_EQ((*files)[0].package, "");
      EXPECT_EQ((*files)[0].sha256, want_sha);
      EXPECT_EQ((*files)[0].size, ls.size());
    }
  }
  // A set that is not a build has no file table: no entries, no error.
  const fs::path list = dir_ / "list.txt";
  std::ofstream(list) << want_sha << "  ls\n";
  ImportRequest request;
  request.name = "list";
  request.format = SourceFormat::hashlist;
  request.set_class = ReferenceClass::known;
  request.path = list.string();
  ASSERT_TRUE(import_refset(*catalog_, request).ok());
  auto other = catalog_->load("list");
  ASSERT_TRUE(other.ok());
  auto none = other->files_at_path("/usr/bin/ls");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(other->has_similarity_index());
}

// Real files under /usr/lib, in sorted path order, every `step`-th one of
// 2 KB .. 2 MB.
std::vector<fs::path> real_files(std::size_t want, std::size_t step) {
  std::vector<fs::path> all;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/usr/lib", fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const auto size = it->file_size(ec);
    if (!ec && size >= 2048 && size <= (2u << 20)) all.push_back(it->path());
  }
  std::sort(all.begin(), all.end());
  std::vector<fs::path> out;
  for (std::size_t i = 0; i < all.size() && out.size() < want; i += step) out.push_back(all[i]);
  return out;
}

Bytes mutate_edits(Bytes b, std::mt19937_64& rng, double fraction) {
  const std::size_t n = std::max<std::size_t>(1, static_cast<std::size_t>(b.size() * fraction));
  for (std::size_t i = 0; i < n; ++i) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
  return b;
}
Bytes mutate_insert(Bytes b, std::mt19937_64& rng) {
  const Bytes extra = random_bytes(rng, 512 + rng() % 4096);
  b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % b.size()), extra.begin(), extra.end());
  return b;
}
Bytes mutate_truncate(Bytes b, std::mt19937_64& rng) {
  b.resize(b.size() * (50 + rng() % 45) / 100);
  return b;
}

// The acceptance test of the index: on real files and mutated copies, the
// index finds >= 99 % of what brute force finds at the indexed thresholds.
TEST_F(SimilarityIndexTest, RecallAgainstBruteForceOnRealFiles) {
  const auto files = real_files(700, 5);
  if (files.size() < 300) GTEST_SKIP() << "too few files under /usr/lib for a realistic corpus";
  std::mt19937_64 rng(2026);
  // References: the first 400 files, plus a truncated variant of every fifth
  // (families of versions, as distributions have).
  std::vector<Bytes> contents;
  for (const auto& f : files) contents.push_back(read_file(f));
  const std::size_t refs = 400;
  for (std::size_t i = 0; i < refs; ++i) {
    write_file(dir_ / "refs" / numbered('f', i), contents[i]);
    if (i % 5 == 0) write_file(dir_ / "refs" / numbered('v', i), mutate_truncate(contents[i], rng));
  }
  auto set = build("corpus", {(dir_ / "refs").string()});
  ASSERT_TRUE(set.has_similarity_index());
  // Queries: the first 150 references unchanged and with byte edits,
  // an insertion and a truncation; and every file not in the set.
  std::vector<Bytes> queries;
  for (std::size_t i = 0; i < 150; ++i) {
    queries.push_back(contents[i]);
    queries.push_back(mutate_edits(contents[i], rng, 0.005));
    queries.push_back(mutate_edits(contents[i], rng, 0.02));
    queries.push_back(mutate_insert(contents[i], rng));
    queries.push_back(mutate_truncate(contents[i], rng));
  }
  for (std::size_t i = refs; i < contents.size(); ++i) queries.push_back(contents[i]);

  auto index = SimilarityIndex::open((dir_ / "data/refsets/corpus/current/similarity.idx").string());
  ASSERT_TRUE(index.ok());
  std::size_t sdbf_bf = 0, sdbf_found = 0, tlsh_bf = 0, tlsh_found = 0, candidates = 0;
  const SimilarityThresholds t{kSdbfIndexedMinScore, kTlshIndexedMaxDistance, -1};
  for (std::size_t qi = 0; qi < queries.size(); ++qi) {
    auto q = make_similarity_query(numbered('q', qi), queries[qi]);
    ASSERT_TRUE(q.ok());
    q->rodata.reset();  // the index serves whole-file digests; .rodata lookups are always brute force
    std::set<std::pair<std::string, std::string>> bf, found;
    for (const auto& d : q->sdbf) {
      for (const auto& h : set.similar(d, t.sdbf_min_score)) bf.emplace("sdbf", h.reference);
    }
    if (q->tlsh) {
      for (const auto& h : set.similar(*q->tlsh, 100000)) {
        if (h.score <= t.tlsh_max_distance) bf.emplace("tlsh", h.reference);
      }
    }
    for (const auto& h : set.similar(*q, t)) {
      EXPECT_TRUE(bf.count({h.algorithm, h.reference})) << "index hit brute force does not have: " << h.reference;
      found.emplace(h.algorithm, h.reference);
    }
    for (const auto& [alg, ref] : bf) {
      const bool hit = found.count({alg, ref}) > 0;
      (alg == "sdbf" ? sdbf_bf : tlsh_bf) += 1;
      (alg == "sdbf" ? sdbf_found : tlsh_found) += hit ? 1 : 0;
    }
    std::vector<std::uint32_t> c;
    index->sdbf_candidates(q->content_keys, c, kSdbfMinSharedKeys);
    candidates += c.size();
  }
  const double sdbf_recall = static_cast<double>(sdbf_found) / static_cast<double>(std::max<std::size_t>(1, sdbf_bf));
  const double tlsh_recall = static_cast<double>(tlsh_found) / static_cast<double>(std::max<std::size_t>(1, tlsh_bf));
  const double mean_candidates = static_cast<double>(candidates) / static_cast<double>(queries.size());
  std::cout << "recall on " << queries.size() << " queries against " << index->sdbf_entries()
            << " references: SDBF >= " << t.sdbf_min_score << ": " << sdbf_found << "/" << sdbf_bf << " = "
            << sdbf_recall << ", TLSH <= " << t.tlsh_max_distance << ": " << tlsh_found << "/" << tlsh_bf << " = "
            << tlsh_recall << "; mean SDBF candidates " << mean_candidates << "\n";
  RecordProperty("sdbf_recall", std::to_string(sdbf_recall));
  RecordProperty("tlsh_recall", std::to_string(tlsh_recall));
  EXPECT_GE(sdbf_bf, 500u) << "the corpus should produce many brute-force hits";
  EXPECT_GE(tlsh_bf, 300u);
  EXPECT_GE(sdbf_recall, 0.99);
  EXPECT_GE(tlsh_recall, 0.99);
  EXPECT_LT(mean_candidates, index->sdbf_entries() / 2.0) << "the index should not propose most of the set";
}

TEST_F(SimilarityIndexTest, ConcurrentLookupsAgreeWithSerialOnes) {
  const auto files = real_files(40, 37);
  if (files.size() < 40) GTEST_SKIP() << "too few files under /usr/lib";
  std::mt19937_64 rng(17);
  std::vector<Bytes> contents;
  for (std::size_t i = 0; i < files.size(); ++i) {
    contents.push_back(read_file(files[i]));
    write_file(dir_ / "root" / numbered('f', i), contents.back());
  }
  auto set = build("conc", {(dir_ / "root").string()});
  std::vector<SimilarityQuery> queries;
  for (const auto& c : contents) queries.push_back(*make_similarity_query("q", mutate_edits(c, rng, 0.01)));
  auto run = [&](std::size_t i) {
    std::vector<std::string> out;
    for (const auto& h : set.similar(queries[i], SimilarityThresholds{})) {
      out.push_back(h.algorithm + ":" + h.reference + ":" + std::to_string(h.score));
    }
    std::string path = "/";
    path += numbered('f', i);
    auto at_path = set.files_at_path(path);
    out.push_back(at_path.ok() && at_path->size() == 1 ? (*at_path)[0].sha256 : "missing");
    return out;
  };
  std::vector<std::vector<std::string>> serial;
  for (std::size_t i = 0; i < queries.size(); ++i) serial.push_back(run(i));
  std::set<std::string> algorithms;
  for (const auto& lines : serial) {
    for (const auto& l : lines) algorithms.insert(l.substr(0, l.find(':')));
  }
  EXPECT_TRUE(algorithms.count("sdbf") && algorithms.count("tlsh") && algorithms.count("ssdeep"));
  std::vector<std::vector<std::string>> parallel(queries.size());
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = t; i < queries.size(); i += 4) parallel[i] = run(i);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(parallel, serial);
}

// Hits carry the reference's size (the matcher's size gate); sets built
// before the size column load with sizes unknown; a damaged size is an error.
TEST_F(SimilarityIndexTest, HitsCarryReferenceSize) {
  std::mt19937_64 rng(11);
  const Bytes ref = random_bytes(rng, 40000);
  write_file(dir_ / "src/ref.bin", ref);
  const fs::path current = dir_ / "data/refsets/sized/current";
  {
    const LoadedRefset set = build("sized", {(dir_ / "src").string()});
    auto q = make_similarity_query("q", ref);
    ASSERT_TRUE(q.ok());
    SimilarityThresholds t;
    t.ssdeep_min_score = 1;
    std::set<std::string> algorithms;
    for (const auto& h : set.similar(*q, t)) {
      SCOPED_TRACE(h.algorithm);
      algorithms.insert(h.algorithm);
      ASSERT_TRUE(h.reference_size.has_value());
      EXPECT_EQ(*h.reference_size, ref.size());
    }
    EXPECT_EQ(algorithms, (std::set<std::string>{"sdbf", "ssdeep", "tlsh"}));
  }
  // Strip the size column, as sets built before it have none.
  auto rewrite = [&](const std::string& file, const std::function<std::string(const std::string&)>& edit) {
    std::ifstream in(current / file);
    std::string out;
    for (std::string line; std::getline(in, line);) out += edit(line) + "\n";
    in.close();
    std::ofstream(current / file, std::ios::trunc) << out;
  };
  for (const char* f : {"similarity.tlsh", "similarity.ssdeep"}) {
    rewrite(f, [](const std::string& line) { return line.substr(0, line.rfind('\t')); });
  }
  {
    auto set = catalog_->load("sized");
    ASSERT_TRUE(set.ok()) << set.error().message();
    auto q = make_similarity_query("q", ref);
    ASSERT_TRUE(q.ok());
    bool any = false;
    for (const auto& h : set->similar(*q, SimilarityThresholds{})) {
      if (h.algorithm == "sdbf") continue;  // SDBF digests hold their size themselves
      any = true;
      EXPECT_FALSE(h.reference_size.has_value()) << h.algorithm;
    }
    EXPECT_TRUE(any);
  }
  for (const char* f : {"similarity.tlsh", "similarity.ssdeep"}) {
    SCOPED_TRACE(f);
    rewrite(f, [](const std::string& line) { return line + "\t12x"; });
    auto set = catalog_->load("sized");
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.error().code(), ErrorCode::parse_error);
    EXPECT_NE(set.error().message().find("line 1"), std::string::npos) << set.error().message();
    rewrite(f, [](const std::string& line) { return line.substr(0, line.rfind('\t')); });
  }
}

}  // namespace
}  // namespace hashsieve::refset
