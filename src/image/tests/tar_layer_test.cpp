#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../tar_layer.h"
#include "layer_test_util.h"

namespace hashsieve::image {
namespace {

using testing::Bytes;
using testing::MemorySource;
using testing::TarBuilder;

constexpr const char* kOciTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kOciGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr const char* kOciZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
constexpr const char* kDockerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr const char* kForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
constexpr const char* kNondistZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Opens and reads a whole layer; the status is the first error (open included).
testing::LayerReadResult open_and_read(const Bytes& blob, const LayerExpectations& expect,
                                       const ArchiveLimits& limits = {}, std::size_t chunk = 1 << 20) {
  auto layer = open_tar_layer(std::make_unique<MemorySource>(blob, chunk), expect, limits);
  if (!layer) return {{}, std::move(layer).error()};
  return testing::read_layer(**layer);
}

TEST(NormalizeEntryPath, Table) {
  struct Case {
    std::string name, input, want;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"plain", "etc/passwd", "etc/passwd", true},
      {"dot slash", "./etc/passwd", "etc/passwd", true},
      {"absolute", "/etc/passwd", "etc/passwd", true},
      {"double slash", "etc//ssl///certs", "etc/ssl/certs", true},
      {"dot components", "./etc/./ssl/.", "etc/ssl", true},
      {"dotdot inside", "usr/lib/../bin/sh", "usr/bin/sh", true},
      {"trailing slash", "usr/lib/", "usr/lib", true},
      {"root", "./", "", true},
      {"escape", "../etc/passwd", "", false},
      {"escape after descent", "a/../../etc", "", false},
      {"absolute escape", "/../x", "", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = normalize_entry_path(c.input);
    ASSERT_EQ(got.ok(), c.ok);
    if (c.ok) {
      EXPECT_EQ(*got, c.want);
    } else {
      EXPECT_EQ(got.error().code(), ErrorCode::invalid_argument);
      EXPECT_NE(got.error().message().find(c.input), std::string::npos) << got.error().message();
    }
  }
}

Bytes sample_tar() {
  return TarBuilder()
      .dir("./")
      .dir("./etc")
      .file("./etc/passwd", "root:x:0:0\n", 0644)
      .file("/usr/bin/tool", std::string(100000, 'x'), 04755)
      .symlink("etc/escape", "../../../../etc/shadow")
      .hardlink("usr/bin/tool2", "./usr/bin/tool")
      .node("dev/null", AE_IFCHR)
      .node("dev/sda", AE_IFBLK)
      .node("run/fifo", AE_IFIFO)
      .file("etc/.wh.old", "")
      .file("var/.wh..wh..opq", "")
      .file(".wh..wh..opq", "")
      .dir(".wh..wh.plnk")
      .file(".wh..wh.plnk/123.456", "aufs link store")
      .file(".wh..wh.aufs", "")
      .build();
}

struct WantEntry {
  std::string path;
  EntryKind kind;
  std::string content;
  std::string link_target;
};

const std::vector<WantEntry> kSampleWant = {
    {"etc", EntryKind::directory, "", ""},
    {"etc/passwd", EntryKind::regular, "root:x:0:0\n", ""},
    {"usr/bin/tool", EntryKind::regular, std::string(100000, 'x'), ""},
    {"etc/escape", EntryKind::symlink, "", "../../../../etc/shadow"},
    {"usr/bin/tool2", EntryKind::hardlink, "", "usr/bin/tool"},
    {"dev/null", EntryKind::device, "", ""},
    {"dev/sda", EntryKind::device, "", ""},
    {"run/fifo", EntryKind::device, "", ""},
    {"etc/old", EntryKind::whiteout, "", ""},
    {"var", EntryKind::opaque_whiteout, "", ""},
    {"", EntryKind::opaque_whiteout, "", ""},
};

TEST(TarLayer, ReadsEveryCompressionAndVerifiesDigests) {
  const Bytes tar = sample_tar();
  Bytes two_members = testing::gzip(Bytes(tar.begin(), tar.begin() + 1000));
  const Bytes second = testing::gzip(Bytes(tar.begin() + 1000, tar.end()));
  two_members.insert(two_members.end(), second.begin(), second.end());
  Bytes two_frames = testing::zstd(Bytes(tar.begin(), tar.begin() + 3000));
  const Bytes frame2 = testing::zstd(Bytes(tar.begin() + 3000, tar.end()));
  two_frames.insert(two_frames.end(), frame2.begin(), frame2.end());

  struct Case {
    std::string name;
    Bytes blob;
    std::string media_type;
    std::size_t chunk;
  };
  const std::vector<Case> cases = {
      {"plain", tar, kOciTar, 1 << 20},
      {"plain detected", tar, "", 1 << 20},
      {"gzip", testing::gzip(tar), kOciGzip, 1 << 20},
      {"docker gzip", testing::gzip(tar), kDockerGzip, 1 << 20},
      {"foreign gzip", testing::gzip(tar), kForeignGzip, 1 << 20},
      {"gzip detected, tiny reads", testing::gzip(tar), "", 3},
      {"gzip two members", two_members, kOciGzip, 1 << 20},
      {"zstd", testing::zstd(tar), kOciZstd, 1 << 20},
      {"zstd nondistributable", testing::zstd(tar), kNondistZstd, 1 << 20},
      {"zstd detected, tiny reads", testing::zstd(tar), "", 5},
      {"zstd two frames", two_frames, kOciZstd, 1 << 20},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    LayerExpectations expect{c.media_type, testing::sha256(c.blob), testing::sha256(tar), c.blob.size()};
    auto got = open_and_read(c.blob, expect, {}, c.chunk);
    ASSERT_TRUE(got.status.ok()) << got.status.error().message();
    ASSERT_EQ(got.entries.size(), kSampleWant.size());
    for (std::size_t i = 0; i < kSampleWant.size(); ++i) {
      SCOPED_TRACE(kSampleWant[i].path);
      EXPECT_EQ(got.entries[i].entry.path, kSampleWant[i].path);
      EXPECT_EQ(got.entries[i].entry.kind, kSampleWant[i].kind);
      EXPECT_EQ(got.entries[i].content, kSampleWant[i].content);
      EXPECT_EQ(got.entries[i].entry.link_target, kSampleWant[i].link_target);
    }
    EXPECT_EQ(got.entries[2].entry.size, 100000U);
    EXPECT_EQ(got.entries[2].entry.mode, 04755U);
  }
}

TEST(TarLayer, UnreadContentIsSkipped) {
  const Bytes tar = TarBuilder().file("a", std::string(70000, 'a')).file("b", "bee").build();
  const Bytes blob = testing::gzip(tar);
  auto layer = open_tar_layer(std::make_unique<MemorySource>(blob), {kOciGzip, testing::sha256(blob), testing::sha256(tar), 0}, {});
  ASSERT_TRUE(layer.ok());
  auto a = (*layer)->next();
  ASSERT_TRUE(a.ok() && a->has_value());
  std::uint8_t buf[10];
  ASSERT_EQ(*(*layer)->read(buf), 10U);
  auto b = (*layer)->next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->path, "b");
  auto end = (*layer)->next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  // finish() drains the rest and still verifies both digests.
  EXPECT_TRUE((*layer)->finish().ok());
}

TEST(TarLayer, RejectsBadInput) {
  const Bytes good = TarBuilder().file("etc/a", "alpha").file("etc/b", std::string(5000, 'b')).build();
  const Bytes good_gz = testing::gzip(good);
  const Bytes good_zst = testing::zstd(good);
  const Bytes zeros_tar = TarBuilder().file("zeros", std::string(8 << 20, '\0')).build();
  TarBuilder many;
  for (char c = 'a'; c < 'a' + 20; ++c) many.file(std::string(1, c), "x");

  Bytes corrupt_header = good;
  corrupt_header[1024 + 148] ^= 0x55;  // checksum field of the second entry's header
  Bytes corrupt_gzip = good_gz;
  corrupt_gzip[corrupt_gzip.size() / 2] ^= 0xff;
  Bytes wrong_crc = good_gz;
  wrong_crc[wrong_crc.size() - 8] ^= 0x01;  // the trailer: CRC-32, then ISIZE
  Bytes wrong_isize = good_gz;
  wrong_isize[wrong_isize.size() - 4] ^= 0x01;
  Bytes trailing_garbage = good_gz;
  for (char c : std::string("garbage!")) trailing_garbage.push_back(static_cast<std::uint8_t>(c));

  ArchiveLimits ratio;
  ratio.max_ratio = 100;
  ArchiveLimits total;
  total.max_layer_bytes = 4096;
  ArchiveLimits entries;
  entries.max_entries = 5;
  ArchiveLimits file_size;
  file_size.max_file_bytes = 100;

  struct Case {
    std::string name;
    Bytes blob;
    LayerExpectations expect;
    ArchiveLimits limits;
    ErrorCode want;
    std::string want_text;
  };
  const std::vector<Case> cases = {
      {"dotdot escape", TarBuilder().file("../etc/passwd", "x").build(), {}, {}, ErrorCode::invalid_argument,
       "../etc/passwd"},
      {"nested escape", TarBuilder().file("a/../../../x", "x").build(), {}, {}, ErrorCode::invalid_argument,
       "escapes the image root"},
      {"hardlink outside", TarBuilder().file("a", "x").hardlink("b", "../../host/file").build(), {}, {},
       ErrorCode::invalid_argument, "../../host/file"},
      {"bare whiteout", TarBuilder().file("etc/.wh.", "").build(), {}, {}, ErrorCode::parse_error, "whiteout"},
      {"ratio bomb", testing::gzip(zeros_tar, 9), {}, ratio, ErrorCode::limit_exceeded, "max_ratio"},
      {"total bytes", good, {}, total, ErrorCode::limit_exceeded, "max_layer_bytes"},
      {"entry count", many.build(), {}, entries, ErrorCode::limit_exceeded, "max_entries"},
      {"declared file size", good, {}, file_size, ErrorCode::limit_exceeded, "max_file_bytes"},
      {"huge declared size", testing::ustar_header("big", 1ULL << 40), {}, {}, ErrorCode::limit_exceeded,
       "max_file_bytes"},
      {"truncated gzip", Bytes(good_gz.begin(), good_gz.begin() + good_gz.size() / 2), {}, {},
       ErrorCode::parse_error, "truncated gzip"},
      {"truncated gzip trailer", Bytes(good_gz.begin(), good_gz.end() - 4), {}, {}, ErrorCode::parse_error,
       "truncated gzip"},
      {"corrupt gzip", corrupt_gzip, {}, {}, ErrorCode::parse_error, "gzip"},
      {"gzip CRC mismatch", wrong_crc, {}, {}, ErrorCode::parse_error, "CRC-32 or length"},
      {"gzip ISIZE mismatch", wrong_isize, {}, {}, ErrorCode::parse_error, "CRC-32 or length"},
      {"gzip trailing garbage", trailing_garbage, {}, {}, ErrorCode::parse_error, "gzip"},
      {"truncated zstd", Bytes(good_zst.begin(), good_zst.begin() + good_zst.size() / 2), {}, {},
       ErrorCode::parse_error, "truncated zstd"},
      {"truncated plain tar", Bytes(good.begin(), good.begin() + 1500), {}, {}, ErrorCode::parse_error, "tar"},
      {"corrupt tar header", corrupt_header, {}, {}, ErrorCode::parse_error, "tar"},
      {"not a tar", testing::to_bytes(std::string(2048, 'z')), {}, {}, ErrorCode::parse_error, "tar"},
      {"empty blob", {}, {}, {}, ErrorCode::parse_error, "tar"},
      {"wrong blob digest", good_gz, {kOciGzip, testing::sha256(good), testing::sha256(good), 0}, {},
       ErrorCode::integrity_error, "blob digest mismatch: expected " + testing::sha256(good)},
      {"wrong diff ID", good_gz, {kOciGzip, testing::sha256(good_gz), testing::sha256(good_gz), 0}, {},
       ErrorCode::integrity_error, "diff ID mismatch: expected " + testing::sha256(good_gz)},
      {"blob shorter than declared", good_gz, {kOciGzip, "", "", good_gz.size() + 1}, {},
       ErrorCode::integrity_error, "size"},
      {"blob longer than declared", good_gz, {kOciGzip, "", "", good_gz.size() - 1}, {},
       ErrorCode::integrity_error, "declared size"},
      {"gzip media type, plain tar", good, {kOciGzip, "", "", 0}, {}, ErrorCode::parse_error, "magic"},
      {"plain media type, gzip bytes", good_gz, {kOciTar, "", "", 0}, {}, ErrorCode::parse_error, "magic"},
      {"zstd media type, gzip bytes", good_gz, {kOciZstd, "", "", 0}, {}, ErrorCode::parse_error, "magic"},
      {"unsupported media type", good_gz, {"application/vnd.oci.image.layer.v1.tar+bzip2", "", "", 0}, {},
       ErrorCode::unsupported, "tar+bzip2"},
      {"non-sha256 digest", good_gz, {kOciGzip, "sha512:abcd", "", 0}, {}, ErrorCode::unsupported, "sha512"},
      {"malformed digest", good_gz, {kOciGzip, "sha256:xyz", "", 0}, {}, ErrorCode::parse_error, "sha256:xyz"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = open_and_read(c.blob, c.expect, c.limits);
    ASSERT_FALSE(got.status.ok());
    EXPECT_EQ(got.status.error().code(), c.want) << got.status.error().message();
    EXPECT_NE(got.status.error().message().find(c.want_text), std::string::npos) << got.status.error().message();
  }
}

TEST(TarLayer, FailedLayerKeepsFailing) {
  const Bytes tar = TarBuilder().file("../x", "x").build();
  auto layer = open_tar_layer(std::make_unique<MemorySource>(tar), {}, {});
  ASSERT_TRUE(layer.ok());
  EXPECT_FALSE((*layer)->next().ok());
  EXPECT_FALSE((*layer)->next().ok());
  EXPECT_FALSE((*layer)->finish().ok());
}

}  // namespace
}  // namespace hashsieve::image
