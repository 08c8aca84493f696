// The OCI layout source end to end: open_image_source("oci:DIR:tag"),
// resolve, then every layer read back through open_tar_layer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "hashsieve/image/source.h"
#include "layer_test_util.h"
#include "oci_layout_writer.h"

namespace hashsieve::image {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT(google-build-using-namespace): the builders

class TempLayout {
 public:
  TempLayout() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-ocisrc-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempLayout() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<LayerBlob> two_layers(const std::string& tag) {
  const Bytes first = TarBuilder().dir("etc").file("etc/os-release", "ID=" + tag + "\n").file("bin/tool", "v1").build();
  const Bytes second = TarBuilder().file("bin/tool", "v2-" + tag).file("etc/.wh.os-release", "").build();
  return {{"application/vnd.oci.image.layer.v1.tar", first, sha256(first)},
          {"application/vnd.oci.image.layer.v1.tar+gzip", gzip(second), sha256(second)}};
}

TEST(OciLayoutSource, ResolvesAndReadsLayers) {
  TempLayout dir;
  OciLayoutWriter writer(dir.path());
  const WrittenImage amd = writer.image("linux", "amd64", two_layers("amd"));
  const WrittenImage arm = writer.image("linux", "arm64", two_layers("arm"));
  writer.tag("multi", media_type::kOciIndex, writer.index({{amd, "amd64"}, {arm, "arm64"}}));

  SourceOptions options;
  options.platforms.platform = Platform{"linux", "arm64", ""};
  auto source = open_image_source("oci:" + dir.path().string() + ":multi", options);
  ASSERT_TRUE(source.ok()) << source.error().message();
  auto images = (*source)->resolve();
  ASSERT_TRUE(images.ok()) << images.error().message();
  ASSERT_EQ(images->size(), 1u);
  const ResolvedImage& image = images->front();
  EXPECT_EQ(image.manifest_digest, arm.manifest_digest);
  EXPECT_EQ(image.platform.to_string(), "linux/arm64");
  ASSERT_EQ(image.layers.size(), 2u);

  auto layer0 = (*source)->open_layer(image, 0);
  ASSERT_TRUE(layer0.ok()) << layer0.error().message();
  auto read0 = read_layer(**layer0);
  ASSERT_TRUE(read0.status.ok()) << read0.status.error().message();
  ASSERT_EQ(read0.entries.size(), 3u);
  EXPECT_EQ(read0.entries[1].entry.path, "etc/os-release");
  EXPECT_EQ(read0.entries[1].content, "ID=arm\n");

  auto layer1 = (*source)->open_layer(image, 1);
  ASSERT_TRUE(layer1.ok()) << layer1.error().message();
  auto read1 = read_layer(**layer1);
  ASSERT_TRUE(read1.status.ok()) << read1.status.error().message();
  ASSERT_EQ(read1.entries.size(), 2u);
  EXPECT_EQ(read1.entries[0].content, "v2-arm");
  EXPECT_EQ(read1.entries[1].entry.kind, EntryKind::whiteout);

  auto out_of_range = (*source)->open_layer(image, 2);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_EQ(out_of_range.error().code(), ErrorCode::invalid_argument);
}

TEST(OciLayoutSource, TamperedLayerFailsAtFinish) {
  TempLayout dir;
  OciLayoutWriter writer(dir.path());
  const WrittenImage img = writer.image("linux", "amd64", two_layers("x"));
  writer.tag("v1", media_type::kOciManifest, img.manifest);
  // Same size, one byte changed inside a file's content.
  const fs::path blob = dir.path() / "blobs" / "sha256" / img.layer_digests[0].substr(7);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), {});
    const std::size_t at = bytes.find("ID=x");
    ASSERT_NE(at, std::string::npos);
    f.seekp(static_cast<std::streamoff>(at + 3));
    f.put('y');
  }
  auto source = open_image_source("oci:" + dir.path().string() + ":v1", {});
  ASSERT_TRUE(source.ok()) << source.error().message();
  auto images = (*source)->resolve();
  ASSERT_TRUE(images.ok()) << images.error().message();
  auto layer = (*source)->open_layer(images->front(), 0);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  auto read = read_layer(**layer);
  ASSERT_FALSE(read.status.ok());
  EXPECT_EQ(read.status.error().code(), ErrorCode::integrity_error) << read.status.error().message();
}

TEST(OciLayoutSource, BadLocations) {
  struct Case {
    std::string name;
    std::string reference;
    ErrorCode code;
  };
  const Case cases[] = {
      {"missing path", "oci:", ErrorCode::invalid_argument},
      {"no such directory", "oci:/nonexistent/hashsieve/layout:v1", ErrorCode::not_found},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = open_image_source(c.reference, {});
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code) << got.error().message();
  }
}

}  // namespace
}  // namespace hashsieve::image
