#include "hashsieve/refset/exact_index.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../exact_index_format.h"

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;
using digest::HashDigest;
using digest::Md5Digest;
using digest::Sha1Digest;
using digest::Sha256Digest;

// A private directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "exact-index-test-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

template <std::size_t N>
HashDigest<N> random_key(std::mt19937_64& rng) {
  std::array<std::uint8_t, N> b{};
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return HashDigest<N>(b);
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::uint32_t apply_merge(const ExactValueMerge& merge, std::uint32_t a, std::uint32_t b) {
  return merge ? merge(a, b) : std::min(a, b);
}

// The expected contents of an index: key -> merged value, per type.
struct Model {
  std::map<Md5Digest, std::uint32_t> md5;
  std::map<Sha1Digest, std::uint32_t> sha1;
  std::map<Sha256Digest, std::uint32_t> sha256;
};

// One add() call, kept so it can be replayed in any order.
struct Insertion {
  int type;
  std::array<std::uint8_t, 32> key;
  std::uint32_t value;
};

struct Input {
  std::vector<Insertion> insertions;
  Model model;
};

template <std::size_t N>
void record(std::map<HashDigest<N>, std::uint32_t>& m, const HashDigest<N>& key, std::uint32_t value,
            const ExactValueMerge& merge) {
  auto [it, inserted] = m.emplace(key, value);
  if (!inserted) it->second = apply_merge(merge, it->second, value);
}

// Random keys of the three types; `dup_percent` of insertions repeat an
// earlier key of the same type with a new value.
Input make_input(std::uint64_t seed, std::size_t n_md5, std::size_t n_sha1, std::size_t n_sha256,
                 int dup_percent, const ExactValueMerge& merge) {
  std::mt19937_64 rng(seed);
  Input in;
  auto gen = [&](int type, std::size_t n) {
    std::vector<std::size_t> mine;
    for (std::size_t i = 0; i < n; ++i) {
      Insertion ins{type, {}, static_cast<std::uint32_t>(rng())};
      if (!mine.empty() && static_cast<int>(rng() % 100) < dup_percent) {
        ins.key = in.insertions[mine[rng() % mine.size()]].key;
      } else {
        for (auto& x : ins.key) x = static_cast<std::uint8_t>(rng());
      }
      mine.push_back(in.insertions.size());
      in.insertions.push_back(ins);
    }
  };
  gen(0, n_md5);
  gen(1, n_sha1);
  gen(2, n_sha256);
  for (const auto& ins : in.insertions) {
    if (ins.type == 0) record(in.model.md5, Md5Digest::from_bytes(ins.key), ins.value, merge);
    if (ins.type == 1) record(in.model.sha1, Sha1Digest::from_bytes(ins.key), ins.value, merge);
    if (ins.type == 2) record(in.model.sha256, Sha256Digest::from_bytes(ins.key), ins.value, merge);
  }
  return in;
}

Status add(ExactIndexWriter& w, const Insertion& ins) {
  if (ins.type == 0) return w.add(Md5Digest::from_bytes(ins.key), ins.value);
  if (ins.type == 1) return w.add(Sha1Digest::from_bytes(ins.key), ins.value);
  return w.add(Sha256Digest::from_bytes(ins.key), ins.value);
}

Result<ExactIndexStats> build(const std::vector<Insertion>& insertions, const std::string& path,
                              ExactIndexWriterOptions options) {
  ExactIndexWriter w(std::move(options));
  for (const auto& ins : insertions) {
    if (Status s = add(w, ins); !s) return std::move(s).error();
  }
  return w.finish(path);
}

template <typename Map>
void expect_all_found(const ExactIndex& index, const Map& m) {
  std::vector<typename Map::key_type> keys;
  for (const auto& [key, value] : m) {
    auto got = index.find(key);
    ASSERT_TRUE(got.has_value()) << key.hex();
    EXPECT_EQ(*got, value) << key.hex();
    keys.push_back(key);
  }
  std::vector<std::optional<std::uint32_t>> batch(keys.size());
  index.find_many(std::span<const typename Map::key_type>(keys), batch);
  for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(batch[i], m.at(keys[i])) << keys[i].hex();
}

template <std::size_t N>
void expect_absent(const ExactIndex& index, const std::map<HashDigest<N>, std::uint32_t>& m,
                   std::mt19937_64& rng, int n) {
  for (int i = 0; i < n; ++i) {
    const auto key = random_key<N>(rng);
    if (m.count(key) != 0) continue;
    EXPECT_FALSE(index.find(key).has_value()) << key.hex();
  }
}

TEST(ExactIndexTest, RoundTripAllTypes) {
  const ExactValueMerge bit_or = [](std::uint32_t a, std::uint32_t b) { return a | b; };
  const ExactValueMerge sum = [](std::uint32_t a, std::uint32_t b) { return a + b; };
  struct Case {
    const char* name;
    std::size_t md5, sha1, sha256;
    int dup_percent;
    ExactValueMerge merge;
    std::size_t budget;
  };
  const Case cases[] = {
      {"one md5", 1, 0, 0, 0, nullptr, 1 << 20},
      {"few of each", 7, 5, 3, 0, nullptr, 1 << 20},
      {"only sha256", 0, 0, 2000, 10, nullptr, 1 << 20},
      {"mixed, default merge", 3000, 2000, 1000, 20, nullptr, 1 << 20},
      {"mixed, or-merge", 3000, 2000, 1000, 30, bit_or, 1 << 20},
      {"mixed, sum-merge, spilling", 5000, 3000, 2000, 30, sum, 16 << 10},
      {"heavy duplicates", 4000, 0, 0, 90, bit_or, 8 << 10},
  };
  std::uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const Input in = make_input(seed++, c.md5, c.sha1, c.sha256, c.dup_percent, c.merge);
    ExactIndexWriterOptions opt;
    opt.memory_budget = c.budget;
    opt.temp_dir = dir.path();
    opt.merge = c.merge;
    opt.durable = c.md5 % 2 == 0;  // exercise both paths
    auto stats = build(in.insertions, dir.file("idx"), opt);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->added, in.insertions.size());
    EXPECT_EQ(stats->counts[0], in.model.md5.size());
    EXPECT_EQ(stats->counts[1], in.model.sha1.size());
    EXPECT_EQ(stats->counts[2], in.model.sha256.size());
    EXPECT_EQ(stats->duplicates, in.insertions.size() - stats->total());
    EXPECT_FALSE(fs::exists(dir.file("idx.tmp")));

    auto index = ExactIndex::open(dir.file("idx"));
    ASSERT_TRUE(index.ok()) << index.error().message();
    EXPECT_EQ(index->count(ExactHashType::md5), in.model.md5.size());
    EXPECT_EQ(index->count(ExactHashType::sha1), in.model.sha1.size());
    EXPECT_EQ(index->count(ExactHashType::sha256), in.model.sha256.size());
    EXPECT_EQ(index->file_bytes(), stats->file_bytes);
    EXPECT_EQ(index->file_bytes(), fs::file_size(dir.file("idx")));
    EXPECT_TRUE(index->verify().ok());
    expect_all_found(*index, in.model.md5);
    expect_all_found(*index, in.model.sha1);
    expect_all_found(*index, in.model.sha256);
    std::mt19937_64 rng(seed * 977);
    expect_absent(*index, in.model.md5, rng, 2000);
    expect_absent(*index, in.model.sha1, rng, 2000);
    expect_absent(*index, in.model.sha256, rng, 2000);
    // The same answers from a copy in (huge-page) memory.
    auto loaded = ExactIndex::open(dir.file("idx"), {.load_into_memory = true});
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(loaded->size(), index->size());
    EXPECT_TRUE(loaded->verify().ok());
    expect_all_found(*loaded, in.model.md5);
    expect_all_found(*loaded, in.model.sha1);
    expect_all_found(*loaded, in.model.sha256);
    expect_absent(*loaded, in.model.sha256, rng, 2000);
    // Only the run files of this writer were in the directory, and they are gone.
    std::size_t entries = std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator());
    EXPECT_EQ(entries, 1u);
  }
}

// A key of one type must not be found through another type's section.
TEST(ExactIndexTest, TypesAreSeparate) {
  TempDir dir;
  std::array<std::uint8_t, 32> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
  ExactIndexWriter w({.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
  ASSERT_TRUE(w.add(Md5Digest::from_bytes(bytes), 5).ok());
  ASSERT_TRUE(w.finish(dir.file("idx")).ok());
  auto index = ExactIndex::open(dir.file("idx"));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->find(Md5Digest::from_bytes(bytes)), 5u);
  EXPECT_FALSE(index->find(Sha1Digest::from_bytes(bytes)).has_value());
  EXPECT_FALSE(index->find(Sha256Digest::from_bytes(bytes)).has_value());
}

// Keys sharing long prefixes (the first 8 bytes, all but the last byte): only
// the exact key hits.
template <std::size_t N>
void check_shared_prefixes(const char* type) {
  SCOPED_TRACE(type);
  struct Case {
    const char* name;
    std::size_t shared;  // leading bytes common to every key
  };
  const Case cases[] = {{"first 8 bytes", 8}, {"first 15 bytes", 15}, {"all but last", N - 1}};
  std::mt19937_64 rng(N);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const auto base = random_key<N>(rng);
    std::vector<HashDigest<N>> present, absent;
    std::set<HashDigest<N>> seen;
    while (present.size() + absent.size() < 200) {
      auto b = base.bytes();
      for (std::size_t i = c.shared; i < N; ++i) b[i] = static_cast<std::uint8_t>(rng());
      const HashDigest<N> key(b);
      if (!seen.insert(key).second) continue;
      (seen.size() % 2 == 0 ? present : absent).push_back(key);
    }
    ExactIndexWriter w({.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
    for (std::size_t i = 0; i < present.size(); ++i) {
      ASSERT_TRUE(w.add(present[i], static_cast<std::uint32_t>(i)).ok());
    }
    // A few unrelated keys so the directory has more than one bucket.
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(w.add(random_key<N>(rng), 0xFFFFFFFFu).ok());
    ASSERT_TRUE(w.finish(dir.file("idx")).ok());
    auto index = ExactIndex::open(dir.file("idx"));
    ASSERT_TRUE(index.ok()) << index.error().message();
    for (std::size_t i = 0; i < present.size(); ++i) EXPECT_EQ(index->find(present[i]), i);
    for (const auto& key : absent) EXPECT_FALSE(index->find(key).has_value()) << key.hex();
  }
}

TEST(ExactIndexTest, SharedPrefixesNeverCollide) {
  check_shared_prefixes<16>("md5");
  check_shared_prefixes<20>("sha1");
  check_shared_prefixes<32>("sha256");
}

TEST(ExactIndexTest, EmptyIndex) {
  TempDir dir;
  ExactIndexWriter w({.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
  auto stats = w.finish(dir.file("idx"));
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->total(), 0u);
  auto index = ExactIndex::open(dir.file("idx"));
  ASSERT_TRUE(index.ok()) << index.error().message();
  EXPECT_EQ(index->size(), 0u);
  EXPECT_EQ(index->bytes_per_hash(), 0.0);
  EXPECT_TRUE(index->verify().ok());
  std::mt19937_64 rng(3);
  EXPECT_FALSE(index->find(random_key<16>(rng)).has_value());
  EXPECT_FALSE(index->find(Md5Digest()).has_value());
  EXPECT_FALSE(index->find(random_key<20>(rng)).has_value());
  EXPECT_FALSE(index->find(random_key<32>(rng)).has_value());
}

// The file depends only on the merged contents: any number of spill runs and
// any insertion order give the same bytes.
TEST(ExactIndexTest, SpillRunsGiveTheSameFile) {
  const ExactValueMerge bit_or = [](std::uint32_t a, std::uint32_t b) { return a | b; };
  const Input in = make_input(42, 6000, 2500, 1500, 25, bit_or);
  TempDir dir;
  ExactIndexWriterOptions one_run{.memory_budget = 64 << 20, .temp_dir = dir.path(), .merge = bit_or, .durable = false};
  auto reference = build(in.insertions, dir.file("ref"), one_run);
  ASSERT_TRUE(reference.ok()) << reference.error().message();
  EXPECT_EQ(reference->runs, 0u);
  const auto reference_bytes = read_file(dir.file("ref"));

  struct Case {
    const char* name;
    std::size_t budget;
    bool shuffle;
    std::uint64_t min_runs;
  };
  const Case cases[] = {
      {"1 KiB budget (compacted runs)", 1 << 10, false, 200},
      {"4 KiB budget, shuffled", 4 << 10, true, 20},
      {"64 KiB budget", 64 << 10, false, 2},
      {"one run, shuffled", 64 << 20, true, 0},
  };
  std::mt19937_64 rng(7);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto insertions = in.insertions;
    if (c.shuffle) std::shuffle(insertions.begin(), insertions.end(), rng);
    ExactIndexWriterOptions opt{.memory_budget = c.budget, .temp_dir = dir.path(), .merge = bit_or, .durable = false};
    auto stats = build(insertions, dir.file("spilled"), opt);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_GE(stats->runs, c.min_runs);
    EXPECT_EQ(read_file(dir.file("spilled")), reference_bytes);
    auto index = ExactIndex::open(dir.file("spilled"));
    ASSERT_TRUE(index.ok());
    expect_all_found(*index, in.model.md5);
    expect_all_found(*index, in.model.sha256);
  }
}

// A small valid index for the corruption tests.
std::vector<std::uint8_t> small_index_bytes(const TempDir& dir, Model* model = nullptr) {
  const Input in = make_input(99, 300, 200, 100, 0, nullptr);
  auto stats = build(in.insertions, dir.file("valid"),
                     {.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
  EXPECT_TRUE(stats.ok());
  if (model != nullptr) *model = in.model;
  return read_file(dir.file("valid"));
}

bool is_format_error(ErrorCode code) {
  return code == ErrorCode::parse_error || code == ErrorCode::integrity_error ||
         code == ErrorCode::unsupported;
}

TEST(ExactIndexTest, TruncatedFilesAreRejected) {
  TempDir dir;
  const auto bytes = small_index_bytes(dir);
  ASSERT_GT(bytes.size(), kExactIndexHeaderSize);
  const std::string path = dir.file("truncated");
  // Every length through the header and a little past it, then a stride
  // through the rest plus the region boundaries (records and directories).
  std::set<std::size_t> lengths;
  for (std::size_t len = 0; len < 256; ++len) lengths.insert(len);
  for (std::size_t len = 256; len < bytes.size(); len += 13) lengths.insert(len);
  for (std::size_t type = 0; type < kExactHashTypes; ++type) {
    for (std::size_t field : {16, 24}) {
      std::uint64_t off;
      std::memcpy(&off, bytes.data() + 24 + 48 * type + field, 8);
      for (std::uint64_t d = 0; d < 3; ++d) lengths.insert(off + d), lengths.insert(off - d);
    }
  }
  lengths.insert(bytes.size() - 1);
  write_file(path, bytes);
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    const std::size_t len = *it;
    if (len >= bytes.size()) continue;
    SCOPED_TRACE(len);
    fs::resize_file(path, len);
    for (bool load : {false, true}) {
      auto index = ExactIndex::open(path, {.load_into_memory = load});
      ASSERT_FALSE(index.ok());
      EXPECT_EQ(index.error().code(), ErrorCode::parse_error) << index.error().message();
    }
  }
  // Extra bytes at the end are also a size mismatch.
  auto longer = bytes;
  longer.push_back(0);
  write_file(path, longer);
  auto index = ExactIndex::open(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code(), ErrorCode::parse_error);
}

std::uint64_t le64(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}

TEST(ExactIndexTest, FlippedHeaderAndDirectoryBytesAreRejected) {
  TempDir dir;
  Model model;
  const auto bytes = small_index_bytes(dir, &model);
  const std::string path = dir.file("flipped");
  // Every header byte, then every byte of every directory.
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < kExactIndexHeaderSize; ++i) offsets.push_back(i);
  for (std::size_t type = 0; type < kExactHashTypes; ++type) {
    const std::size_t desc = 24 + 48 * type;
    const std::uint64_t count = le64(bytes, desc);
    std::uint32_t bits;
    std::memcpy(&bits, bytes.data() + desc + 8, 4);
    const std::uint64_t dir_offset = le64(bytes, desc + 24);
    const std::uint64_t dir_bytes = ((std::uint64_t{1} << bits) + 1) * 4;
    ASSERT_GT(count, 0u);
    ASSERT_LE(dir_offset + dir_bytes, bytes.size());
    for (std::uint64_t i = 0; i < dir_bytes; ++i) offsets.push_back(dir_offset + i);
  }
  write_file(path, bytes);
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  auto poke = [&](std::size_t off, std::uint8_t value) {
    file.seekp(static_cast<std::streamoff>(off));
    file.put(static_cast<char>(value));
    file.flush();
  };
  for (std::size_t off : offsets) {
    for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xFF}}) {
      SCOPED_TRACE(testing::Message() << "offset " << off << " mask " << int{mask});
      poke(off, bytes[off] ^ mask);
      auto index = ExactIndex::open(path);
      poke(off, bytes[off]);
      ASSERT_FALSE(index.ok());
      EXPECT_TRUE(is_format_error(index.error().code())) << index.error().message();
    }
  }
  // The restored file is valid again: the test did change what it meant to.
  file.close();
  EXPECT_TRUE(ExactIndex::open(path).ok());
}

// Record corruption is not checked by open() (that would read the whole file);
// lookups must stay safe and verify() must notice.
TEST(ExactIndexTest, FlippedRecordBytesAreCaughtByVerify) {
  TempDir dir;
  Model model;
  const auto bytes = small_index_bytes(dir, &model);
  const std::string path = dir.file("flipped");
  std::mt19937_64 rng(5);
  for (std::size_t type = 0; type < kExactHashTypes; ++type) {
    const std::size_t desc = 24 + 48 * type;
    const std::uint64_t count = le64(bytes, desc);
    const std::uint64_t records = le64(bytes, desc + 16);
    const std::size_t record_size = type == 0 ? 20 : type == 1 ? 24 : 36;
    for (int trial = 0; trial < 50; ++trial) {
      const std::size_t off = records + rng() % (count * record_size);
      SCOPED_TRACE(testing::Message() << "type " << type << " offset " << off);
      auto copy = bytes;
      copy[off] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      write_file(path, copy);
      auto index = ExactIndex::open(path);
      ASSERT_TRUE(index.ok()) << index.error().message();
      EXPECT_EQ(index->verify().error().code(), ErrorCode::integrity_error);
      for (const auto& [key, value] : model.md5) (void)index->find(key);
      for (const auto& [key, value] : model.sha1) (void)index->find(key);
      for (const auto& [key, value] : model.sha256) (void)index->find(key);
    }
  }
}

std::uint64_t test_checksum(const std::vector<std::uint8_t>& header) {
  return detail::Checksum64::of(header.data(), kExactIndexHeaderSize - 8);
}

// Headers that pass the checksum but lie about sizes and offsets: the checks
// behind the checksum must hold on their own (a crafted file can recompute it).
TEST(ExactIndexTest, ForgedHeadersAreRejected) {
  TempDir dir;
  const auto bytes = small_index_bytes(dir);
  const std::uint64_t size = bytes.size();
  struct Case {
    const char* name;
    std::size_t offset;  // of the field to overwrite
    std::size_t width;   // 4 or 8
    std::uint64_t value;
    ErrorCode code;
  };
  const std::size_t md5 = 24, sha256 = 24 + 96;
  const Case cases[] = {
      {"header size", 12, 4, 64, ErrorCode::parse_error},
      {"file size", 16, 8, size + 1, ErrorCode::parse_error},
      {"huge count", md5 + 0, 8, ~std::uint64_t{0}, ErrorCode::parse_error},
      {"count past the end", md5 + 0, 8, size, ErrorCode::parse_error},
      {"count 2^32", md5 + 0, 8, std::uint64_t{1} << 32, ErrorCode::parse_error},
      {"dir bits 63", md5 + 8, 4, 63, ErrorCode::parse_error},
      {"dir bits 0", sha256 + 8, 4, 0, ErrorCode::parse_error},
      {"record size", md5 + 12, 4, 16, ErrorCode::parse_error},
      {"records offset past end", md5 + 16, 8, size, ErrorCode::parse_error},
      {"records offset huge", md5 + 16, 8, ~std::uint64_t{0} - 8, ErrorCode::parse_error},
      {"records in header", md5 + 16, 8, 0, ErrorCode::parse_error},
      {"dir offset past end", sha256 + 24, 8, size - 4, ErrorCode::parse_error},
      {"dir offset huge", sha256 + 24, 8, ~std::uint64_t{0}, ErrorCode::parse_error},
      {"dir moved onto records", sha256 + 24, 8, 192, ErrorCode::integrity_error},
      {"dir checksum", sha256 + 40, 8, 12345, ErrorCode::integrity_error},
  };
  const std::string path = dir.file("forged");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto copy = bytes;
    std::memcpy(copy.data() + c.offset, &c.value, c.width);
    const std::uint64_t sum = test_checksum(copy);
    std::memcpy(copy.data() + kExactIndexHeaderSize - 8, &sum, 8);
    write_file(path, copy);
    auto index = ExactIndex::open(path);
    ASSERT_FALSE(index.ok());
    EXPECT_EQ(index.error().code(), c.code) << index.error().message();
  }
}

TEST(ExactIndexTest, GarbageIsRejected) {
  TempDir dir;
  const std::string path = dir.file("garbage");
  std::mt19937_64 rng(11);
  for (std::size_t len : {0, 1, 8, 175, 176, 177, 1000, 100000}) {
    SCOPED_TRACE(len);
    std::vector<std::uint8_t> bytes(len);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    if (len >= 8) std::memcpy(bytes.data(), "HSEXIDX", 8);  // past the magic check
    write_file(path, bytes);
    auto index = ExactIndex::open(path);
    ASSERT_FALSE(index.ok());
    EXPECT_TRUE(is_format_error(index.error().code())) << index.error().message();
  }
  auto missing = ExactIndex::open(dir.file("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
  auto directory = ExactIndex::open(dir.path());
  ASSERT_FALSE(directory.ok());
}

TEST(ExactIndexTest, UnwritableDestinationsFailCleanly) {
  TempDir dir;
  write_file(dir.file("regular"), {1, 2, 3});
  struct Case {
    const char* name;
    std::string path;
  };
  const Case cases[] = {
      {"missing directory", dir.file("no/such/dir/idx")},
      {"parent is a file", dir.file("regular/idx")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ExactIndexWriter w({.memory_budget = 4 << 10, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
    std::mt19937_64 rng(1);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(w.add(random_key<16>(rng), 1).ok());
    auto stats = w.finish(c.path);
    ASSERT_FALSE(stats.ok());
    EXPECT_NE(stats.error().message().find(c.path), std::string::npos) << stats.error().message();
    EXPECT_FALSE(fs::exists(c.path + ".tmp"));
    // Only "regular" is left: no run files.
    std::size_t entries = std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator());
    EXPECT_EQ(entries, 1u);
    // The writer is spent.
    EXPECT_FALSE(w.add(random_key<16>(rng), 1).ok());
  }
  if (::geteuid() != 0) {  // root ignores permission bits
    fs::create_directory(dir.file("ro"));
    fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
    ExactIndexWriter w;
    ASSERT_TRUE(w.add(Md5Digest(), 1).ok());
    auto stats = w.finish(dir.file("ro/idx"));
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.error().code(), ErrorCode::permission_denied);
  }
}

TEST(ExactIndexTest, UnusableTempDirFailsAdd) {
  TempDir dir;
  ExactIndexWriter w({.memory_budget = 1 << 10, .temp_dir = dir.file("none"), .merge = nullptr, .durable = false});
  std::mt19937_64 rng(2);
  Status failed;
  for (int i = 0; i < 1000 && failed.ok(); ++i) failed = w.add(random_key<16>(rng), 1);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::not_found);
  auto stats = w.finish(dir.file("idx"));
  ASSERT_FALSE(stats.ok());
  EXPECT_FALSE(fs::exists(dir.file("idx")));
  EXPECT_FALSE(fs::exists(dir.file("idx.tmp")));
}

// A file-size limit makes writes fail part-way, like a full disk.
TEST(ExactIndexTest, WriteFailureLeavesNothing) {
  TempDir dir;
  const Input in = make_input(8, 20000, 0, 0, 0, nullptr);
  struct Case {
    const char* name;
    std::size_t budget;
    rlim_t limit;
  };
  const Case cases[] = {
      {"final file too big", 64 << 20, 100 << 10},
      {"run file too big", 256 << 10, 100 << 10},
      {"fails in the header", 64 << 20, 100},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old;
    lim.rlim_cur = c.limit;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
    auto stats = build(in.insertions, dir.file("idx"),
                       {.memory_budget = c.budget, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.error().code(), ErrorCode::io_error) << stats.error().message();
    std::size_t entries = std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator());
    EXPECT_EQ(entries, 0u);
  }
}

TEST(ExactIndexTest, FinishTwiceFails) {
  TempDir dir;
  ExactIndexWriter w({.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false});
  ASSERT_TRUE(w.add(Sha1Digest(), 3).ok());
  ASSERT_TRUE(w.finish(dir.file("a")).ok());
  auto again = w.finish(dir.file("b"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::invalid_argument);
  EXPECT_FALSE(fs::exists(dir.file("b")));
}

TEST(ExactIndexTest, ConcurrentLookups) {
  TempDir dir;
  const Input in = make_input(21, 20000, 0, 0, 0, nullptr);
  ASSERT_TRUE(build(in.insertions, dir.file("idx"),
                    {.memory_budget = 1 << 20, .temp_dir = dir.path(), .merge = nullptr, .durable = false})
                  .ok());
  auto index = ExactIndex::open(dir.file("idx"));
  ASSERT_TRUE(index.ok());
  std::atomic<std::size_t> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (const auto& [key, value] : in.model.md5) {
        if (index->find(key) != value) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0u);
}

}  // namespace
}  // namespace hashsieve::refset

namespace hashsieve::refset {
namespace {

// The fuzz seeds are small valid indexes: they must follow the current format.
TEST(ExactIndexTest, FuzzSeedsAreValidIndexes) {
  const fs::path corpus = fs::path(HASHSIEVE_TEST_DATA) / ".." / ".." / "fuzz" / "corpus" / "exact_index";
  std::size_t seen = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    SCOPED_TRACE(entry.path().string());
    auto index = ExactIndex::open(entry.path().string());
    ASSERT_TRUE(index.ok()) << index.error().message();
    EXPECT_TRUE(index->verify().ok());
    ++seen;
  }
  EXPECT_GE(seen, 3u);
}

}  // namespace
}  // namespace hashsieve::refset
