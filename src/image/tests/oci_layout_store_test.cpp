#include "../oci_layout_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "image_builders.h"

namespace hashsieve::image {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT(google-build-using-namespace): the builders

constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-oci-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const std::string& body) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << body;
}

// Writes an OCI layout: blobs, oci-layout, index.json with the given entries.
class LayoutWriter {
 public:
  explicit LayoutWriter(fs::path root) : root_(std::move(root)) {
    write_file(root_ / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  }
  std::string blob(const std::string& body) {
    const std::string d = sha256_digest_of(body);
    write_file(root_ / "blobs" / "sha256" / d.substr(7), body);
    return d;
  }
  std::string image(const std::string& arch) {
    const std::string config = config_json("linux", arch, {sha256_digest_of("diff-" + arch)});
    blob(config);
    const std::string manifest =
        manifest_json(media_type::kOciManifest, media_type::kOciConfig, config, {{std::string(kOciLayer), "blob-" + arch}});
    blob(manifest);
    blob("blob-" + arch);
    return manifest;
  }
  void index(const std::vector<nlohmann::json>& entries) {
    write_file(root_ / "index.json", index_json(media_type::kOciIndex, entries));
  }
  static nlohmann::json tagged(const std::string& manifest, const std::string& tag) {
    nlohmann::json d = descriptor(media_type::kOciManifest, manifest);
    d["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
    return d;
  }

 private:
  fs::path root_;
};

TEST(SplitOciLocation, PathAndTag) {
  struct Case {
    std::string input, path, tag;
  };
  const Case cases[] = {
      {"/tmp/img", "/tmp/img", ""},
      {"/tmp/img:1.0", "/tmp/img", "1.0"},
      {"rel/dir:latest", "rel/dir", "latest"},
      {"/tmp/a:b/c", "/tmp/a:b/c", ""},
      {"/tmp/a:b/c:t", "/tmp/a:b/c", "t"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    const auto got = split_oci_location(c.input);
    EXPECT_EQ(got.path, c.path);
    EXPECT_EQ(got.tag, c.tag);
  }
}

TEST(OciLayoutStore, ResolvesByTagAndWholeIndex) {
  TempDir dir;
  LayoutWriter w(dir.path());
  const std::string amd = w.image("amd64");
  const std::string arm = w.image("arm64");
  w.index({LayoutWriter::tagged(amd, "v1"), LayoutWriter::tagged(arm, "v1-arm")});
  auto store = OciLayoutStore::open(dir.path().string());
  ASSERT_TRUE(store.ok()) << store.error().message();

  auto by_tag = resolve(**store, ResolveRequest{"oci:x:v1-arm", "", "v1-arm", {}});
  ASSERT_TRUE(by_tag.ok()) << by_tag.error().message();
  EXPECT_EQ(by_tag->front().platform.to_string(), "linux/arm64");
  EXPECT_EQ(by_tag->front().manifest_digest, sha256_digest_of(arm));

  // No tag: index.json itself is the index; entries carry no platform, so
  // each entry's config decides.
  PlatformSelection all;
  all.all_platforms = true;
  auto whole = resolve(**store, ResolveRequest{"oci:x", "", "", all});
  ASSERT_TRUE(whole.ok()) << whole.error().message();
  ASSERT_EQ(whole->size(), 2u);
  EXPECT_EQ((*whole)[0].platform.to_string(), "linux/amd64");
  EXPECT_EQ((*whole)[1].platform.to_string(), "linux/arm64");
  PlatformSelection arm_only;
  arm_only.platform = Platform{"linux", "arm64", ""};
  auto picked = resolve(**store, ResolveRequest{"oci:x", "", "", arm_only});
  ASSERT_TRUE(picked.ok()) << picked.error().message();
  ASSERT_EQ(picked->size(), 1u);
  EXPECT_EQ(picked->front().platform.to_string(), "linux/arm64");

  // The layer blob streams from the file.
  Descriptor layer;
  layer.digest = by_tag->front().layers.at(0).digest;
  auto blob = (*store)->open_blob(layer);
  ASSERT_TRUE(blob.ok()) << blob.error().message();
  std::string bytes(64, '\0');
  auto n = (*blob)->read({reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(bytes.substr(0, *n), "blob-arm64");
}

TEST(OciLayoutStore, Errors) {
  struct Case {
    std::string name;
    std::function<void(const fs::path&, LayoutWriter&)> setup;
    std::string tag;
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"unknown tag",
       [](const fs::path&, LayoutWriter& w) { w.index({LayoutWriter::tagged(w.image("amd64"), "v1")}); }, "v2",
       ErrorCode::not_found, "no tag 'v2' (tags: v1)"},
      {"path characters in digest",
       [](const fs::path& root, LayoutWriter&) {
         // Written by hand: the builders would compute a real digest.
         write_file(root / "index.json",
                    R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                    R"("digest":"sha256:../../../../etc/passwd","size":3,)"
                    R"("annotations":{"org.opencontainers.image.ref.name":"v1"}}]})");
       },
       "v1", ErrorCode::parse_error, "invalid digest 'sha256:../../../../etc/passwd'"},
      {"blob missing",
       [](const fs::path& root, LayoutWriter& w) {
         const std::string m = w.image("amd64");
         w.index({LayoutWriter::tagged(m, "v1")});
         fs::remove(root / "blobs" / "sha256" / sha256_digest_of(m).substr(7));
       },
       "v1", ErrorCode::not_found, "not in OCI layout"},
      {"blob symlink escapes",
       [](const fs::path& root, LayoutWriter& w) {
         const std::string m = w.image("amd64");
         w.index({LayoutWriter::tagged(m, "v1")});
         const fs::path blob = root / "blobs" / "sha256" / sha256_digest_of(m).substr(7);
         const fs::path outside = root.parent_path() / (root.filename().string() + "-outside");
         write_file(outside, m);
         fs::remove(blob);
         fs::create_symlink(outside, blob);
       },
       "v1", ErrorCode::invalid_argument, "outside the OCI layout"},
      {"tampered manifest",
       [](const fs::path& root, LayoutWriter& w) {
         const std::string m = w.image("amd64");
         w.index({LayoutWriter::tagged(m, "v1")});
         write_file(root / "blobs" / "sha256" / sha256_digest_of(m).substr(7), m + "\n");
       },
       "v1", ErrorCode::integrity_error, "not the claimed"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    LayoutWriter w(dir.path());
    c.setup(dir.path(), w);
    auto store = OciLayoutStore::open(dir.path().string());
    ASSERT_TRUE(store.ok()) << store.error().message();
    auto got = resolve(**store, ResolveRequest{"oci:x", "", c.tag, {}});
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
    std::error_code ec;
    fs::remove(dir.path().parent_path() / (dir.path().filename().string() + "-outside"), ec);
  }
}

TEST(OciLayoutStore, DigestPathCharactersRejected) {
  TempDir dir;
  LayoutWriter w(dir.path());
  w.index({});
  auto store = OciLayoutStore::open(dir.path().string());
  ASSERT_TRUE(store.ok()) << store.error().message();
  const std::string cases[] = {"sha256:../../../../etc/passwd", "sha256:" + std::string(64, 'G'),
                               "sha256:" + std::string(63, 'a') + "/", "sha512:" + std::string(128, 'a'), ""};
  for (const auto& digest : cases) {
    SCOPED_TRACE(digest);
    auto got = (*store)->blob_path(digest);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), ErrorCode::invalid_argument);
    EXPECT_NE(got.error().message().find("64 lowercase hex"), std::string::npos) << got.error().message();
  }
}

TEST(OciLayoutStore, OpenRejectsNonLayouts) {
  struct Case {
    std::string name;
    std::string marker;  // "" = no oci-layout file
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"no marker", "", ErrorCode::not_found, "oci-layout"},
      {"bad marker", "{}", ErrorCode::parse_error, "imageLayoutVersion"},
      {"future version", R"({"imageLayoutVersion":"2.0.0"})", ErrorCode::unsupported, "2.0.0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    if (!c.marker.empty()) write_file(dir.path() / "oci-layout", c.marker);
    auto got = OciLayoutStore::open(dir.path().string());
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
  auto missing = OciLayoutStore::open("/nonexistent/hashsieve/layout");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
}

}  // namespace
}  // namespace hashsieve::image
