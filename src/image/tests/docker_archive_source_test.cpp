#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../sources_internal.h"
#include "layer_test_util.h"

namespace hashsieve::image {
namespace {

using testing::Bytes;
using testing::TarBuilder;
using Members = std::vector<std::pair<std::string, Bytes>>;

std::string hex_of(const Bytes& b) { return testing::sha256(b).substr(7); }

Bytes outer_tar(const Members& members) {
  TarBuilder t;
  for (const auto& [name, bytes] : members) t.file(name, std::string(bytes.begin(), bytes.end()));
  return t.build();
}

Bytes json_bytes(const nlohmann::json& j) { return testing::to_bytes(j.dump()); }

Bytes config_for(const std::vector<Bytes>& layer_tars, const std::string& arch = "arm64") {
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const auto& t : layer_tars) diff_ids.push_back(testing::sha256(t));
  return json_bytes({{"architecture", arch}, {"os", "linux"}, {"variant", "v8"},
                     {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}});
}

const Bytes kLayer0 = TarBuilder().dir("etc").file("etc/a", "alpha").file("etc/b", "beta").build();
const Bytes kLayer1 = TarBuilder().file("etc/.wh.a", "").file("bin/tool", "new tool").build();
const Bytes kOtherLayer = TarBuilder().file("other", "o").build();

// docker < 25: "<hex>.json" config, "<id>/layer.tar" layers.
Members classic_archive(const std::vector<Bytes>& layer_blobs, const std::vector<Bytes>& layer_tars) {
  const Bytes config = config_for(layer_tars);
  Members m;
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < layer_blobs.size(); ++i) {
    const std::string name = std::string(64, static_cast<char>('a' + i)) + "/layer.tar";
    layers.push_back(name);
    m.emplace_back(name, layer_blobs[i]);
  }
  const std::string config_name = hex_of(config) + ".json";
  m.emplace_back(config_name, config);
  m.emplace_back("manifest.json",
                 json_bytes(nlohmann::json::array({{{"Config", config_name}, {"RepoTags", {"team/app:1.0"}}, {"Layers", layers}}})));
  return m;
}

// docker 25+: everything under blobs/sha256/, named by digest.
Members blobs_archive(const std::vector<Bytes>& layer_blobs, const std::vector<Bytes>& layer_tars,
                      const std::string& prefix = "") {
  const Bytes config = config_for(layer_tars);
  Members m;
  m.emplace_back(prefix + "manifest.json", Bytes{});  // replaced below; listed first like docker does
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& blob : layer_blobs) {
    const std::string name = "blobs/sha256/" + hex_of(blob);
    layers.push_back(name);
    m.emplace_back(prefix + name, blob);
  }
  m.emplace_back(prefix + "blobs/sha256/" + hex_of(config), config);
  m.emplace_back(prefix + "oci-layout", testing::to_bytes(R"({"imageLayoutVersion":"1.0.0"})"));
  m[0].second = json_bytes(nlohmann::json::array(
      {{{"Config", "blobs/sha256/" + hex_of(config)}, {"RepoTags", {"team/app:2.0"}}, {"Layers", layers}}}));
  return m;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve_dockerarch_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const Bytes& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Scan {
  Status status;
  std::vector<ResolvedImage> images;
  std::vector<std::vector<std::string>> layer_paths;  // per layer: "path=content" or "path"
};

Scan scan(const std::string& location, const SourceOptions& options = {}) {
  Scan out;
  auto source = open_docker_archive_source(location, options);
  if (!source) return {std::move(source).error(), {}, {}};
  auto images = (*source)->resolve();
  if (!images) return {std::move(images).error(), {}, {}};
  out.images = *images;
  for (std::size_t i = 0; i < out.images[0].layers.size(); ++i) {
    auto layer = (*source)->open_layer(out.images[0], i);
    if (!layer) return {std::move(layer).error(), out.images, out.layer_paths};
    auto read = testing::read_layer(**layer);
    std::vector<std::string> paths;
    for (const auto& e : read.entries) paths.push_back(e.content.empty() ? e.entry.path : e.entry.path + "=" + e.content);
    out.layer_paths.push_back(std::move(paths));
    if (!read.status) return {std::move(read.status).error(), out.images, out.layer_paths};
  }
  return out;
}

const std::vector<std::vector<std::string>> kWantPaths = {{"etc", "etc/a=alpha", "etc/b=beta"},
                                                          {"etc/a", "bin/tool=new tool"}};

TEST(DockerArchiveSource, ReadsBothLayouts) {
  const Bytes gz1 = testing::gzip(kLayer1);
  Members two_images = classic_archive({kLayer0, kLayer1}, {kLayer0, kLayer1});
  {
    // A second image listed FIRST, so selection by tag is what picks ours.
    const Bytes other_config = config_for({kOtherLayer});
    two_images.emplace_back("ffff/layer.tar", kOtherLayer);
    two_images.emplace_back(hex_of(other_config) + ".json", other_config);
    auto manifest = nlohmann::json::parse(std::string(two_images[3].second.begin(), two_images[3].second.end()));
    const nlohmann::json other = {{"Config", hex_of(other_config) + ".json"},
                                  {"RepoTags", {"other:latest"}},
                                  {"Layers", {"ffff/layer.tar"}}};
    manifest.insert(manifest.begin(), other);
    two_images[3].second = json_bytes(manifest);
  }
  struct Case {
    std::string name;
    Members members;
    std::string selector;
    std::vector<std::string> want_media_types;
    std::size_t want_skipped;
  };
  const std::string kTar = "application/vnd.oci.image.layer.v1.tar";
  const std::vector<Case> cases = {
      {"classic", classic_archive({kLayer0, kLayer1}, {kLayer0, kLayer1}), "", {kTar, kTar}, 0},
      {"blobs (docker 25+)", blobs_archive({kLayer0, kLayer1}, {kLayer0, kLayer1}), "", {kTar, kTar}, 0},
      {"blobs with ./ member names", blobs_archive({kLayer0, kLayer1}, {kLayer0, kLayer1}, "./"), "", {kTar, kTar}, 0},
      {"gzip layer inside", blobs_archive({kLayer0, gz1}, {kLayer0, kLayer1}), "", {kTar, kTar + "+gzip"}, 0},
      {"select by tag", two_images, "team/app:1.0", {kTar, kTar}, 1},
  };
  TempDir dir;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.write("image.tar", outer_tar(c.members));
    const Scan got = scan(c.selector.empty() ? path : path + ":" + c.selector);
    ASSERT_TRUE(got.status.ok()) << got.status.error().message();
    ASSERT_EQ(got.images.size(), 1U);
    const ResolvedImage& image = got.images[0];
    EXPECT_EQ(image.platform.to_string(), "linux/arm64/v8");
    EXPECT_EQ(image.config_digest.size(), 71U);
    EXPECT_EQ(image.skipped.size(), c.want_skipped);
    ASSERT_EQ(image.layers.size(), 2U);
    EXPECT_EQ(image.layers[0].diff_id, testing::sha256(kLayer0));
    EXPECT_EQ(image.layers[1].diff_id, testing::sha256(kLayer1));
    EXPECT_EQ(image.layers[0].digest, testing::sha256(kLayer0));
    for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(image.layers[i].media_type, c.want_media_types[i]);
    EXPECT_EQ(got.layer_paths, kWantPaths);
  }
}

// The fuzz seeds were written by Python's tarfile (not libarchive): both
// layouts must read cleanly, so the fuzzer starts from valid archives.
TEST(DockerArchiveSource, ReadsTheFuzzSeeds) {
  for (const char* name : {"classic.tar", "blobs.tar"}) {
    SCOPED_TRACE(name);
    const Scan got = scan(std::string(HASHSIEVE_TEST_DATA) + "/../../fuzz/corpus/docker_archive/" + name);
    ASSERT_TRUE(got.status.ok()) << got.status.error().message();
    const std::vector<std::vector<std::string>> want = {{"etc/a=alpha", "etc/b=beta"}, {"etc/a", "bin/tool=tool"}};
    EXPECT_EQ(got.layer_paths, want);
    EXPECT_EQ(got.images[0].platform.to_string(), "linux/amd64");
  }
}

TEST(DockerArchiveSource, RejectsBadArchives) {
  const Members good = blobs_archive({kLayer0, kLayer1}, {kLayer0, kLayer1});
  auto edit = [&](auto f) {
    Members m = good;
    f(m);
    return m;
  };
  auto manifest_of = [](const Members& m) {
    for (const auto& [name, bytes] : m) {
      if (name == "manifest.json") return nlohmann::json::parse(std::string(bytes.begin(), bytes.end()));
    }
    return nlohmann::json();
  };
  auto set_manifest = [](Members& m, const nlohmann::json& j) {
    for (auto& [name, bytes] : m) {
      if (name == "manifest.json") bytes = json_bytes(j);
    }
  };
  const std::string config_name = manifest_of(good)[0]["Config"];

  SourceOptions amd64;
  amd64.platforms.platform = Platform{"linux", "amd64", ""};

  struct Case {
    std::string name;
    Bytes archive;
    std::string selector;
    SourceOptions options;
    ErrorCode want;
    std::string want_text;
  };
  const std::vector<Case> cases = {
      {"compressed outer archive", testing::gzip(outer_tar(good)), "", {}, ErrorCode::unsupported, "gzip-compressed"},
      {"not a tar", testing::to_bytes(std::string(4096, 'x')), "", {}, ErrorCode::parse_error, "tar"},
      {"no manifest.json", outer_tar(edit([](Members& m) { m.erase(m.begin()); })), "", {}, ErrorCode::not_found,
       "manifest.json"},
      {"manifest not JSON", outer_tar(edit([](Members& m) { m[0].second = testing::to_bytes("[{"); })), "", {},
       ErrorCode::parse_error, "not valid JSON"},
      {"manifest not an array", outer_tar(edit([&](Members& m) { set_manifest(m, {{"Config", "x"}}); })), "", {},
       ErrorCode::parse_error, "array"},
      {"missing layer member",
       outer_tar(edit([&](Members& m) {
         auto j = manifest_of(m);
         j[0]["Layers"][1] = "blobs/sha256/" + std::string(64, '0');
         set_manifest(m, j);
       })),
       "", {}, ErrorCode::not_found, std::string(64, '0')},
      {"diff_ids count mismatch",
       outer_tar(edit([&](Members& m) {
         auto j = manifest_of(m);
         j[0]["Layers"].erase(1);
         set_manifest(m, j);
       })),
       "", {}, ErrorCode::parse_error, "diff_ids"},
      {"config digest mismatch",
       outer_tar(edit([&](Members& m) {
         for (auto& [name, bytes] : m) {
           if (name == config_name) bytes.push_back(' ');
         }
       })),
       "", {}, ErrorCode::integrity_error, "config"},
      {"layer blob digest mismatch",
       outer_tar(edit([&](Members& m) {
         for (auto& [name, bytes] : m) {
           if (name == "blobs/sha256/" + hex_of(kLayer1)) bytes = TarBuilder().file("evil", "x").build();
         }
       })),
       "", {}, ErrorCode::integrity_error, "digest mismatch"},
      {"classic layer wrong diff ID",
       outer_tar([] {
         Members m = classic_archive({kLayer0, kLayer1}, {kLayer0, kOtherLayer});
         return m;
       }()),
       "", {}, ErrorCode::integrity_error, "mismatch"},
      {"unknown tag", outer_tar(good), "nope:1", {}, ErrorCode::not_found, "nope:1"},
      {"platform mismatch", outer_tar(good), "", amd64, ErrorCode::not_found, "linux/arm64/v8"},
  };
  TempDir dir;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.write("image.tar", c.archive);
    const Scan got = scan(c.selector.empty() ? path : path + ":" + c.selector, c.options);
    ASSERT_FALSE(got.status.ok());
    EXPECT_EQ(got.status.error().code(), c.want) << got.status.error().message();
    EXPECT_NE(got.status.error().message().find(c.want_text), std::string::npos) << got.status.error().message();
  }
  const Scan missing = scan(dir.path() + "/absent.tar");
  ASSERT_FALSE(missing.status.ok());
  EXPECT_EQ(missing.status.error().code(), ErrorCode::not_found);
}

}  // namespace
}  // namespace hashsieve::image
