// The .rodata section digests (section_digests.h) and their life in a built
// set: refset build writes similarity.rodata.*, the catalog loads them and
// LoadedRefset::similar matches a query's .rodata digests against them;
// sets without those files (built before them) still load.
#include "hashsieve/refset/section_digests.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/elf_sections.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

Bytes read_bytes(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f.ok()) return {};
  return Bytes(f->bytes().begin(), f->bytes().end());
}

void write_file(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// A real ELF program of the build machine with a .rodata section.
Bytes program() {
  Bytes b = read_bytes("/usr/bin/ls");
  if (b.empty() || !digest::has_elf_magic(b)) return {};
  return b;
}

std::uint64_t rodata_size_of(const Bytes& elf) {
  const std::vector<std::string> names = {".rodata"};
  auto sections = digest::find_elf_sections(elf, names);
  std::uint64_t n = 0;
  if (sections.ok()) {
    for (const auto& s : *sections) n += s.size;
  }
  return n;
}

// The same program with its section header offset pointing past the end.
Bytes damaged_section_table(Bytes elf) {
  // ELF64: e_shoff at 0x28, 8 bytes; ELF32: at 0x20, 4 bytes (little endian).
  const bool is64 = elf[4] == 2;
  const std::size_t at = is64 ? 0x28 : 0x20;
  for (std::size_t i = 0; i < (is64 ? 8u : 4u); ++i) elf[at + i] = 0xff;
  elf[at + (is64 ? 7 : 3)] = 0x7f;
  return elf;
}

TEST(RodataDigests, Table) {
  const Bytes ls = program();
  if (ls.empty()) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  Bytes header_only(ls.begin(), ls.begin() + 64);
  struct Case {
    std::string name;
    Bytes input;
    bool want_error;
    bool want_digests;
  };
  const std::vector<Case> cases = {
      {"not ELF", random_bytes(8192, 1), false, false},
      {"empty", {}, false, false},
      {"ELF program", ls, false, true},
      {"section table past the end", damaged_section_table(ls), true, false},
      {"ELF header only", header_only, true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto d = rodata_digests("x", c.input);
    ASSERT_EQ(!d.ok(), c.want_error) << (d.ok() ? "" : d.error().message());
    if (!d.ok()) {
      EXPECT_EQ(d.error().code(), ErrorCode::parse_error);
      EXPECT_NE(d.error().message().find(".rodata"), std::string::npos) << d.error().message();
      continue;
    }
    ASSERT_EQ(d->has_value(), c.want_digests);
    if (!c.want_digests) continue;
    const SectionDigests& r = **d;
    EXPECT_EQ(r.size, rodata_size_of(ls));
    EXPECT_GT(r.size, 512u);
    ASSERT_EQ(r.sdbf.size(), 1u);
    EXPECT_EQ(r.sdbf[0].input_size(), r.size);
    EXPECT_TRUE(r.tlsh.has_value());
    EXPECT_TRUE(r.ssdeep.has_value());
    // Deterministic: the scan's digests equal the reference's.
    auto again = rodata_digests("x", c.input);
    ASSERT_TRUE(again.ok() && again->has_value());
    EXPECT_TRUE(**again == r);
  }
}

class RodataSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_rodata_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto catalog = RefsetCatalog::open((dir_ / "data").string());
    ASSERT_TRUE(catalog.ok()) << catalog.error().message();
    catalog_.emplace(std::move(catalog).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<ImportOutcome> build(const std::string& name) {
    BuildRequest request;
    request.name = name;
    request.set_class = ReferenceClass::malicious;
    request.paths = {(dir_ / "src").string()};
    return build_refset(*catalog_, request);
  }

  // Best score per algorithm of the hits of `query` against `set`.
  static std::map<std::string, SimilarityHit> hits_of(const LoadedRefset& set, const Bytes& query) {
    auto q = make_similarity_query("q", query);
    EXPECT_TRUE(q.ok());
    std::map<std::string, SimilarityHit> out;
    SimilarityThresholds t;
    t.sdbf_min_score = 1;
    for (const auto& h : set.similar(*q, t)) out.emplace(h.algorithm, h);
    return out;
  }

  fs::path dir_;
  std::optional<RefsetCatalog> catalog_;
};

TEST_F(RodataSetTest, BuiltSetHoldsRodataDigestsThatRoundTrip) {
  const Bytes ls = program();
  if (ls.empty()) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  write_file(dir_ / "src/bin/tool", ls);
  write_file(dir_ / "src/share/data.bin", random_bytes(20000, 2));
  auto built = build("bad");
  ASSERT_TRUE(built.ok()) << built.error().message();
  EXPECT_TRUE(built->warnings.empty());
  for (const char* f : {"similarity.rodata.sdbf", "similarity.rodata.tlsh", "similarity.rodata.ssdeep"}) {
    EXPECT_TRUE(fs::exists(dir_ / "data/refsets/bad/current" / f)) << f;
  }
  auto set = catalog_->load("bad");
  ASSERT_TRUE(set.ok()) << set.error().message();
  const auto counts = set->rodata_references();
  EXPECT_EQ(counts.sdbf, 1u);  // the ELF file only
  EXPECT_EQ(counts.tlsh, 1u);
  EXPECT_EQ(counts.ssdeep, 1u);

  struct Case {
    std::string algorithm;
    int want_score;
  };
  const std::vector<Case> cases = {{"sdbf:.rodata", 100}, {"tlsh:.rodata", 0}, {"ssdeep:.rodata", 100}};
  const auto hits = hits_of(*set, ls);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.algorithm);
    auto it = hits.find(c.algorithm);
    ASSERT_NE(it, hits.end());
    EXPECT_EQ(it->second.score, c.want_score);
    EXPECT_EQ(it->second.reference, "/bin/tool");
    EXPECT_EQ(it->second.hit_class, ReferenceClass::malicious);
    ASSERT_TRUE(it->second.reference_size.has_value());
    EXPECT_EQ(*it->second.reference_size, rodata_size_of(ls));  // the section's size, not the file's
  }
  // A non-ELF query has no .rodata digests, so no .rodata hits.
  for (const auto& [algorithm, h] : hits_of(*set, random_bytes(20000, 2))) {
    EXPECT_EQ(algorithm.find(".rodata"), std::string::npos) << algorithm;
  }
}

TEST_F(RodataSetTest, SetsWithoutRodataFilesStillLoad) {
  const Bytes ls = program();
  if (ls.empty()) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  write_file(dir_ / "src/bin/tool", ls);
  ASSERT_TRUE(build("old").ok());
  const fs::path current = dir_ / "data/refsets/old/current";
  for (const char* f : {"similarity.rodata.sdbf", "similarity.rodata.tlsh", "similarity.rodata.ssdeep"}) {
    fs::remove(current / f);
  }
  auto set = catalog_->load("old");
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(set->rodata_references().tlsh, 0u);
  const auto hits = hits_of(*set, ls);
  EXPECT_TRUE(hits.count("tlsh"));  // whole-file digests unchanged
  for (const auto& [algorithm, h] : hits) EXPECT_EQ(algorithm.find(".rodata"), std::string::npos) << algorithm;
}

TEST_F(RodataSetTest, DamagedRodataFilesAreRefusedNamingTheFile) {
  const Bytes ls = program();
  if (ls.empty()) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  write_file(dir_ / "src/bin/tool", ls);
  ASSERT_TRUE(build("bad").ok());
  const fs::path current = dir_ / "data/refsets/bad/current";
  struct Case {
    std::string file;
    std::string content;
  };
  const std::vector<Case> cases = {
      {"similarity.rodata.tlsh", "not-a-digest\t/bin/tool\t100\n"},
      {"similarity.rodata.ssdeep", "3:ab:cd\t/bin/tool\t12x\n"},
      {"similarity.rodata.sdbf", "sdbf:03:broken\n"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    std::ifstream in(current / c.file, std::ios::binary);
    const std::string original((std::istreambuf_iterator<char>(in)), {});
    in.close();
    std::ofstream(current / c.file, std::ios::trunc | std::ios::binary) << c.content;
    auto set = catalog_->load("bad");
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.error().code(), ErrorCode::parse_error);
    EXPECT_NE(set.error().message().find(c.file), std::string::npos) << set.error().message();
    std::ofstream(current / c.file, std::ios::trunc | std::ios::binary) << original;
    EXPECT_TRUE(catalog_->load("bad").ok());
  }
}

// A damaged section table costs that file its .rodata digests, with a
// warning naming it, and nothing else.
TEST_F(RodataSetTest, DamagedSectionTableIsAWarning) {
  const Bytes ls = program();
  if (ls.empty()) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  write_file(dir_ / "src/bin/broken", damaged_section_table(ls));
  write_file(dir_ / "src/bin/tool", ls);
  auto built = build("mixed");
  ASSERT_TRUE(built.ok()) << built.error().message();
  EXPECT_EQ(built->manifest.rows, 2u);
  ASSERT_EQ(built->warnings.size(), 1u);
  EXPECT_NE(built->warnings[0].message.find("broken"), std::string::npos) << built->warnings[0].message;
  EXPECT_NE(built->warnings[0].message.find(".rodata"), std::string::npos) << built->warnings[0].message;
  auto set = catalog_->load("mixed");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->rodata_references().tlsh, 1u);
}

}  // namespace
}  // namespace hashsieve::refset
