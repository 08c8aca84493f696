// Pulls from the real distribution registry (Debian docker-registry 2.8):
// images written as OCI layouts, pushed with skopeo, then resolved and read
// through open_image_source. Skips when docker-registry or skopeo is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hashsieve/image/source.h"
#include "layer_test_util.h"
#include "oci_layout_writer.h"
#include "registry_fixture.h"

namespace hashsieve::image {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT(google-build-using-namespace): the builders
using testsupport::RegistryAuth;
using testsupport::RegistryFixture;
using testsupport::TokenServer;

#define START_REGISTRY(registry, ...)                                     \
  do {                                                                    \
    if (!testsupport::have_program("skopeo")) GTEST_SKIP() << "skopeo is not installed"; \
    if (auto why = (registry).start(__VA_ARGS__); !why.empty()) GTEST_SKIP() << why; \
  } while (0)

// A layout in the registry's work directory with a single image ("single",
// two layers: plain tar + gzip) and a two-platform index ("multi").
struct TestImages {
  WrittenImage single;
  WrittenImage amd64;
  WrittenImage arm64;
  fs::path layout;
};

std::vector<LayerBlob> layers_for(const std::string& name) {
  std::string busybox;
  if (std::ifstream in("/bin/busybox", std::ios::binary); in) {
    busybox.assign(std::istreambuf_iterator<char>(in), {});
  } else {
    busybox = std::string(300000, 'b');  // a stand-in of similar size
  }
  const Bytes base = TarBuilder().dir("bin").file("bin/busybox", busybox, 0755).symlink("bin/sh", "busybox")
                         .file("etc/hostname", name + "\n").build();
  const Bytes top = TarBuilder().file("etc/motd", "hello from " + name + "\n").file("etc/.wh.hostname", "").build();
  return {{"application/vnd.oci.image.layer.v1.tar", base, sha256(base)},
          {"application/vnd.oci.image.layer.v1.tar+gzip", gzip(top), sha256(top)}};
}

TestImages write_images(const fs::path& dir) {
  OciLayoutWriter writer(dir);
  TestImages t;
  t.layout = dir;
  t.single = writer.image("linux", "amd64", layers_for("single"));
  writer.tag("single", media_type::kOciManifest, t.single.manifest);
  t.amd64 = writer.image("linux", "amd64", layers_for("multi-amd64"));
  t.arm64 = writer.image("linux", "arm64", layers_for("multi-arm64"));
  writer.tag("multi", media_type::kOciIndex, writer.index({{t.amd64, "amd64"}, {t.arm64, "arm64"}}));
  return t;
}

SourceOptions registry_options() {
  SourceOptions options;
  options.insecure = true;
  options.retry.initial_backoff_ms = 10;
  options.credentials.docker_config_path = "/nonexistent/hashsieve/config.json";
  return options;
}

Result<std::vector<ResolvedImage>> resolve_ref(const std::string& ref, const SourceOptions& options) {
  auto source = open_image_source(ref, options);
  if (!source) return std::move(source).error();
  return (*source)->resolve();
}

TEST(RegistryIntegration, SingleImageResolvesAndLayersRead) {
  RegistryFixture registry;
  START_REGISTRY(registry);
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "single", "team/app:1.0"), "");

  const std::string ref = registry.host() + "/team/app:1.0";
  auto source = open_image_source(ref, registry_options());
  ASSERT_TRUE(source.ok()) << source.error().message();
  auto resolved = (*source)->resolve();
  ASSERT_TRUE(resolved.ok()) << resolved.error().message();
  ASSERT_EQ(resolved->size(), 1u);
  const ResolvedImage& image = resolved->front();
  EXPECT_EQ(image.reference, ref);
  EXPECT_EQ(image.repository, "team/app");
  EXPECT_EQ(image.manifest_digest, images.single.manifest_digest);
  EXPECT_EQ(image.config_digest, images.single.config_digest);
  EXPECT_EQ(image.platform.to_string(), "linux/amd64");
  ASSERT_EQ(image.layers.size(), 2u);
  EXPECT_EQ(image.layers[0].digest, images.single.layer_digests[0]);

  auto base = (*source)->open_layer(image, 0);
  ASSERT_TRUE(base.ok()) << base.error().message();
  auto base_read = read_layer(**base, 1 << 16);
  ASSERT_TRUE(base_read.status.ok()) << base_read.status.error().message();
  ASSERT_EQ(base_read.entries.size(), 4u);
  EXPECT_EQ(base_read.entries[1].entry.path, "bin/busybox");
  EXPECT_GT(base_read.entries[1].content.size(), 100000u);
  EXPECT_EQ(base_read.entries[2].entry.kind, EntryKind::symlink);
  EXPECT_EQ(base_read.entries[3].content, "single\n");

  auto top = (*source)->open_layer(image, 1);
  ASSERT_TRUE(top.ok()) << top.error().message();
  auto top_read = read_layer(**top);
  ASSERT_TRUE(top_read.status.ok()) << top_read.status.error().message();
  ASSERT_EQ(top_read.entries.size(), 2u);
  EXPECT_EQ(top_read.entries[0].content, "hello from single\n");
  EXPECT_EQ(top_read.entries[1].entry.kind, EntryKind::whiteout);

  // The same image pinned by digest.
  auto pinned = resolve_ref(registry.host() + "/team/app@" + images.single.manifest_digest, registry_options());
  ASSERT_TRUE(pinned.ok()) << pinned.error().message();
  EXPECT_EQ(pinned->front().manifest_digest, images.single.manifest_digest);
}

TEST(RegistryIntegration, MultiArchIndexPlatformSelection) {
  RegistryFixture registry;
  START_REGISTRY(registry);
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "multi", "team/multi:2", /*all=*/true), "");
  struct Case {
    std::string name;
    std::string platform;
    bool all;
    std::vector<std::string> want_digests;
  };
  const Case cases[] = {
      {"default", "", false, {images.amd64.manifest_digest}},
      {"arm64", "linux/arm64", false, {images.arm64.manifest_digest}},
      {"all", "", true, {images.amd64.manifest_digest, images.arm64.manifest_digest}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SourceOptions options = registry_options();
    if (!c.platform.empty()) options.platforms.platform = *Platform::parse(c.platform);
    options.platforms.all_platforms = c.all;
    auto got = resolve_ref(registry.host() + "/team/multi:2", options);
    ASSERT_TRUE(got.ok()) << got.error().message();
    std::vector<std::string> digests;
    for (const auto& image : *got) digests.push_back(image.manifest_digest);
    EXPECT_EQ(digests, c.want_digests);
  }
  SourceOptions s390 = registry_options();
  s390.platforms.platform = Platform{"linux", "s390x", ""};
  auto missing = resolve_ref(registry.host() + "/team/multi:2", s390);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
  EXPECT_NE(missing.error().message().find("linux/amd64, linux/arm64"), std::string::npos) << missing.error().message();
}

TEST(RegistryIntegration, NotFound) {
  RegistryFixture registry;
  START_REGISTRY(registry);
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "single", "team/app:1.0"), "");
  struct Case {
    std::string name;
    std::string ref;
    std::string message_part;
  };
  const Case cases[] = {
      {"unknown tag", "/team/app:nope", "manifest team/app:nope: not found (404) (MANIFEST_UNKNOWN"},
      // 2.8 answers MANIFEST_UNKNOWN for an unknown repository as well.
      {"unknown repository", "/team/other:1.0", "manifest team/other:1.0: not found (404)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = resolve_ref(registry.host() + c.ref, registry_options());
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), ErrorCode::not_found);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(RegistryIntegration, TamperedBlobsAreIntegrityErrors) {
  RegistryFixture registry;
  START_REGISTRY(registry);
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "single", "team/app:1.0"), "");
  ASSERT_EQ(registry.push(images.layout, "multi", "team/multi:2", true), "");
  // Flip one byte of a blob in the registry's storage, keeping its size.
  auto flip = [&](const std::string& digest, std::size_t offset) {
    const fs::path data = registry.blob_data_path(digest);
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << data;
    f.seekg(static_cast<std::streamoff>(offset));
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x20));
  };
  // A layer: resolve succeeds, the layer fails when it ends.
  // Offset 50000 is inside bin/busybox's content (over 100 KB, near the start).
  flip(images.single.layer_digests[0], 50000);
  auto source = open_image_source(registry.host() + "/team/app:1.0", registry_options());
  ASSERT_TRUE(source.ok()) << source.error().message();
  auto resolved = (*source)->resolve();
  ASSERT_TRUE(resolved.ok()) << resolved.error().message();
  auto layer = (*source)->open_layer(resolved->front(), 0);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  auto read = read_layer(**layer, 1 << 16);
  ASSERT_FALSE(read.status.ok());
  EXPECT_EQ(read.status.error().code(), ErrorCode::integrity_error) << read.status.error().message();

  // A config: resolve fails.
  flip(images.arm64.config_digest, 2);
  SourceOptions arm = registry_options();
  arm.platforms.platform = Platform{"linux", "arm64", ""};
  auto config = resolve_ref(registry.host() + "/team/multi:2", arm);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), ErrorCode::integrity_error);
  EXPECT_NE(config.error().message().find("config blob " + images.arm64.config_digest), std::string::npos)
      << config.error().message();
}

TEST(RegistryIntegration, BasicAuthWithHtpasswd) {
  RegistryFixture registry;
  RegistryAuth auth;
  auth.htpasswd_user = "scanner";
  auth.htpasswd_password = "s3cret";
  START_REGISTRY(registry, auth);
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "single", "team/app:1.0", false, "scanner:s3cret"), "");
  const std::string ref = registry.host() + "/team/app:1.0";
  struct Case {
    std::string name;
    std::string user, password;
    std::string docker_config;  // written when non-empty
    ErrorCode code;             // internal = success
    std::string message_part;
  };
  const Case cases[] = {
      {"right password", "scanner", "s3cret", "", ErrorCode::internal, ""},
      {"docker config", "", "", R"({"auths":{")" + registry.host() + R"(":{"auth":"c2Nhbm5lcjpzM2NyZXQ="}}})",
       ErrorCode::internal, ""},
      {"wrong password", "scanner", "nope", "", ErrorCode::permission_denied,
       "401 Unauthorized after authenticating as 'scanner'"},
      {"no credentials", "", "", "", ErrorCode::permission_denied, "requires credentials"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SourceOptions options = registry_options();
    options.credentials.username = c.user;
    options.credentials.password = c.password;
    if (!c.docker_config.empty()) {
      options.credentials.docker_config_path = (registry.work_dir() / "docker-config.json").string();
      std::ofstream(options.credentials.docker_config_path) << c.docker_config;
    }
    auto got = resolve_ref(ref, options);
    if (c.code == ErrorCode::internal) {
      ASSERT_TRUE(got.ok()) << got.error().message();
      EXPECT_EQ(got->front().manifest_digest, images.single.manifest_digest);
    } else {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.error().code(), c.code) << got.error().message();
      EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
    }
  }
}

TEST(RegistryIntegration, BearerTokenAuth) {
  RegistryFixture registry;
  // The token server needs a directory before the registry exists.
  std::string tmpl = (fs::temp_directory_path() / "hashsieve-token-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path token_dir = tmpl;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{token_dir};
  TokenServer tokens;
  if (auto why = tokens.start(token_dir, "robot", "t0ken-pass"); !why.empty()) GTEST_SKIP() << why;
  START_REGISTRY(registry, tokens.registry_auth());
  const TestImages images = write_images(registry.work_dir() / "layout");
  ASSERT_EQ(registry.push(images.layout, "single", "team/app:1.0", false, "robot:t0ken-pass"), "") << registry.log();
  const std::string ref = registry.host() + "/team/app:1.0";
  struct Case {
    std::string name;
    std::string user, password;
    ErrorCode code;  // internal = success
    std::string message_part;
  };
  const Case cases[] = {
      {"right password", "robot", "t0ken-pass", ErrorCode::internal, ""},
      {"wrong password", "robot", "nope", ErrorCode::permission_denied, "refused the credentials of 'robot'"},
      {"anonymous", "", "", ErrorCode::permission_denied, "refused anonymous access"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SourceOptions options = registry_options();
    options.credentials.username = c.user;
    options.credentials.password = c.password;
    auto source = open_image_source(ref, options);
    ASSERT_TRUE(source.ok()) << source.error().message();
    auto got = (*source)->resolve();
    if (c.code != ErrorCode::internal) {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.error().code(), c.code) << got.error().message();
      EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.error().message() << "\n" << registry.log();
    EXPECT_EQ(got->front().manifest_digest, images.single.manifest_digest);
    // Blobs go through the same token.
    auto layer = (*source)->open_layer(got->front(), 1);
    ASSERT_TRUE(layer.ok()) << layer.error().message();
    auto read = read_layer(**layer);
    ASSERT_TRUE(read.status.ok()) << read.status.error().message();
    EXPECT_EQ(read.entries.at(0).content, "hello from single\n");
  }
}

}  // namespace
}  // namespace hashsieve::image
