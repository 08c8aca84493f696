#include <gtest/gtest.h>

#include <cstring>

#include "../blob_store.h"
#include "image_builders.h"

namespace hashsieve::image {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the builders

constexpr std::string_view kGzipLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";

// An in-memory registry: blobs by digest, tags pointing at manifests.
class FakeStore final : public BlobStore {
 public:
  std::string put(const std::string& body) {
    const std::string d = sha256_digest_of(body);
    blobs[d] = body;
    return d;
  }
  void tag(const std::string& name, const std::string& body, std::string media_type) {
    tags[name] = {put(body), std::move(media_type)};
  }

  Result<FetchedManifest> fetch_manifest(const std::string& reference) override {
    ++manifest_fetches;
    std::string digest = reference;
    std::string type;
    if (auto t = tags.find(reference); t != tags.end()) {
      digest = t->second.first;
      type = t->second.second;
    }
    auto it = blobs.find(digest);
    if (it == blobs.end()) return Error(ErrorCode::not_found, "no manifest " + reference);
    std::string body = it->second;
    if (auto o = overrides.find(digest); o != overrides.end()) body = o->second;
    return FetchedManifest{body, type, claimed.count(digest) ? claimed[digest] : digest};
  }
  Result<std::string> read_blob(const Descriptor& blob) override {
    auto it = blobs.find(blob.digest);
    if (it == blobs.end()) return Error(ErrorCode::not_found, "no blob " + blob.digest);
    if (auto o = overrides.find(blob.digest); o != overrides.end()) return o->second;
    return it->second;
  }
  Result<std::unique_ptr<ByteSource>> open_blob(const Descriptor& blob) override {
    return Error(ErrorCode::internal, "not used by resolve: " + blob.digest);
  }

  std::map<std::string, std::string> blobs;
  std::map<std::string, std::pair<std::string, std::string>> tags;
  std::map<std::string, std::string> overrides;  // digest -> tampered bytes served instead
  std::map<std::string, std::string> claimed;    // digest -> Docker-Content-Digest served instead
  int manifest_fetches = 0;
};

struct BuiltImage {
  std::string manifest;
  std::string config;
};

BuiltImage build_image(FakeStore& store, const std::string& os, const std::string& arch, const std::string& variant,
                       std::string_view manifest_type = media_type::kOciManifest) {
  const std::string blob1 = "layer-one-" + arch + variant;
  const std::string blob2 = "layer-two-" + arch + variant;
  const std::string config = config_json(os, arch, {sha256_digest_of("diff1" + arch), sha256_digest_of("diff2" + arch)}, variant);
  store.put(config);
  const bool docker = manifest_type == media_type::kDockerManifest;
  const std::string manifest = manifest_json(manifest_type, docker ? media_type::kDockerConfig : media_type::kOciConfig,
                                             config, {{std::string(docker ? kGzipLayer : kOciLayer), blob1},
                                                      {std::string(docker ? kGzipLayer : kOciLayer), blob2}});
  store.put(manifest);
  return {manifest, config};
}

ResolveRequest request_for(const std::string& ref, PlatformSelection platforms = {}) {
  return ResolveRequest{"r.example/app:" + ref, "app", ref, std::move(platforms)};
}

TEST(Resolve, SingleManifestByTag) {
  FakeStore store;
  auto img = build_image(store, "linux", "amd64", "", media_type::kDockerManifest);
  store.tag("1.0", img.manifest, std::string(media_type::kDockerManifest));
  auto got = resolve(store, request_for("1.0"));
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->size(), 1u);
  const auto& image = got->front();
  EXPECT_EQ(image.reference, "r.example/app:1.0");
  EXPECT_EQ(image.repository, "app");
  EXPECT_EQ(image.manifest_digest, sha256_digest_of(img.manifest));
  EXPECT_EQ(image.config_digest, sha256_digest_of(img.config));
  EXPECT_EQ(image.platform.to_string(), "linux/amd64");
  ASSERT_EQ(image.layers.size(), 2u);
  EXPECT_EQ(image.layers[0].digest, sha256_digest_of("layer-one-amd64"));
  EXPECT_EQ(image.layers[0].diff_id, sha256_digest_of("diff1amd64"));
  EXPECT_EQ(image.layers[1].media_type, kGzipLayer);
  EXPECT_EQ(image.layers[1].size, std::string("layer-two-amd64").size());
}

struct MultiArch {
  FakeStore store;
  std::string index;
};

void build_multi_arch(MultiArch& m) {
  auto amd = build_image(m.store, "linux", "amd64", "");
  auto arm = build_image(m.store, "linux", "arm64", "v8");
  auto armv7 = build_image(m.store, "linux", "arm", "v7");
  const std::string attestation = manifest_json(media_type::kOciManifest, media_type::kOciConfig, "{}", {});
  m.store.put(attestation);
  nlohmann::json att = index_entry(media_type::kOciManifest, attestation, "unknown", "unknown");
  att["annotations"] = {{"vnd.docker.reference.type", "attestation-manifest"}};
  nlohmann::json sbom = index_entry(media_type::kOciManifest, attestation, "", "");
  sbom["artifactType"] = "application/spdx+json";
  nlohmann::json helm = index_entry("application/vnd.cncf.helm.config.v1+json", "helm", "", "");
  // Nested index holding the arm/v7 image.
  const std::string nested = index_json(media_type::kOciIndex, {index_entry(media_type::kOciManifest, armv7.manifest, "linux", "arm", "v7")});
  m.store.put(nested);
  m.index = index_json(media_type::kOciIndex, {index_entry(media_type::kOciManifest, arm.manifest, "linux", "arm64", "v8"),
                                               att, index_entry(media_type::kOciManifest, amd.manifest, "linux", "amd64"),
                                               sbom, helm, index_entry(media_type::kOciIndex, nested, "", "")});
  m.store.tag("multi", m.index, std::string(media_type::kOciIndex));
}

TEST(Resolve, IndexSelectsPlatforms) {
  struct Case {
    std::string name;
    std::string platform;  // "" = default
    bool all;
    std::vector<std::string> want_platforms;
  };
  const Case cases[] = {
      {"default linux/amd64", "", false, {"linux/amd64"}},
      {"explicit arm64", "linux/arm64", false, {"linux/arm64/v8"}},
      {"nested arm/v7", "linux/arm/v7", false, {"linux/arm/v7"}},
      {"all", "", true, {"linux/arm64/v8", "linux/amd64", "linux/arm/v7"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    MultiArch m;
    build_multi_arch(m);
    PlatformSelection selection;
    if (!c.platform.empty()) selection.platform = *Platform::parse(c.platform);
    selection.all_platforms = c.all;
    auto got = resolve(m.store, request_for("multi", selection));
    ASSERT_TRUE(got.ok()) << got.error().message();
    std::vector<std::string> platforms;
    for (const auto& image : *got) {
      platforms.push_back(image.platform.to_string());
      EXPECT_EQ(image.layers.size(), 2u);
      EXPECT_EQ(image.skipped.size(), 3u);  // attestation, SBOM artifact, helm
    }
    EXPECT_EQ(platforms, c.want_platforms);
  }
}

TEST(Resolve, SkippedEntriesAreNamed) {
  MultiArch m;
  build_multi_arch(m);
  auto got = resolve(m.store, request_for("multi"));
  ASSERT_TRUE(got.ok()) << got.error().message();
  const auto& skipped = got->front().skipped;
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped[0].find("attestation"), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[1].find("application/spdx+json"), std::string::npos) << skipped[1];
  EXPECT_NE(skipped[2].find("helm"), std::string::npos) << skipped[2];
}

TEST(Resolve, MissingPlatformListsAvailable) {
  MultiArch m;
  build_multi_arch(m);
  auto got = resolve(m.store, request_for("multi", {Platform{"linux", "s390x", ""}, false}));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::not_found);
  EXPECT_NE(got.error().message().find("linux/s390x"), std::string::npos) << got.error().message();
  EXPECT_NE(got.error().message().find("linux/arm64/v8, linux/amd64, linux/arm/v7"), std::string::npos)
      << got.error().message();
}

TEST(Resolve, SingleManifestWithOtherExplicitPlatformIsNotFound) {
  FakeStore store;
  auto img = build_image(store, "linux", "arm64", "");
  store.tag("1", img.manifest, "");
  auto got = resolve(store, request_for("1", {Platform{"linux", "amd64", ""}, false}));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::not_found);
  EXPECT_NE(got.error().message().find("linux/arm64"), std::string::npos);
  // Without an explicit platform the one image is scanned whatever it is.
  auto any = resolve(store, request_for("1"));
  ASSERT_TRUE(any.ok()) << any.error().message();
  EXPECT_EQ(any->front().platform.to_string(), "linux/arm64");
}

TEST(Resolve, IntegrityFailures) {
  struct Case {
    std::string name;
    std::function<void(FakeStore&, const BuiltImage&)> tamper;
    std::string ref;  // "" = by tag "t"
    std::string message_part;
  };
  const Case cases[] = {
      {"manifest differs from claimed digest",
       [](FakeStore& s, const BuiltImage& b) { s.overrides[sha256_digest_of(b.manifest)] = b.manifest + " "; }, "",
       "not the claimed"},
      {"manifest differs from requested digest",
       [](FakeStore& s, const BuiltImage& b) {
         s.overrides[sha256_digest_of(b.manifest)] = b.manifest + " ";
         s.claimed[sha256_digest_of(b.manifest)] = "";
       },
       "digest", "not the requested"},
      {"config tampered",
       [](FakeStore& s, const BuiltImage& b) { s.overrides[sha256_digest_of(b.config)] = b.config + " "; }, "",
       "config blob"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeStore store;
    auto img = build_image(store, "linux", "amd64", "");
    store.tag("t", img.manifest, "");
    c.tamper(store, img);
    auto got = resolve(store, request_for(c.ref == "digest" ? sha256_digest_of(img.manifest) : "t"));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), ErrorCode::integrity_error);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(Resolve, StructuralErrors) {
  struct Case {
    std::string name;
    std::function<std::string(FakeStore&)> build;  // returns the tagged manifest
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"diff_ids count differs",
       [](FakeStore& s) {
         const std::string config = config_json("linux", "amd64", {sha256_digest_of("d")});
         s.put(config);
         return manifest_json(media_type::kOciManifest, media_type::kOciConfig, config,
                              {{std::string(kOciLayer), "a"}, {std::string(kOciLayer), "b"}});
       },
       ErrorCode::parse_error, "2 layers but 1 diff IDs"},
      {"unsupported layer type",
       [](FakeStore& s) {
         const std::string config = config_json("linux", "amd64", {sha256_digest_of("d")});
         s.put(config);
         return manifest_json(media_type::kOciManifest, media_type::kOciConfig, config,
                              {{"application/vnd.oci.image.layer.v1.tar+lz4", "a"}});
       },
       ErrorCode::unsupported, "application/vnd.oci.image.layer.v1.tar+lz4"},
      {"artifact at top level",
       [](FakeStore& s) {
         s.put("{}");
         return manifest_json(media_type::kOciManifest, "application/vnd.oci.empty.v1+json", "{}", {});
       },
       ErrorCode::unsupported, "application/vnd.oci.empty.v1+json"},
      {"schema 1",
       [](FakeStore&) { return std::string(R"({"schemaVersion":1,"name":"app","tag":"t","fsLayers":[]})"); },
       ErrorCode::unsupported, "schema 1"},
      {"config missing",
       [](FakeStore&) {
         return manifest_json(media_type::kOciManifest, media_type::kOciConfig, config_json("linux", "amd64", {}), {});
       },
       ErrorCode::not_found, "no blob"},
      {"index of nothing usable",
       [](FakeStore&) {
         return index_json(media_type::kOciIndex, {index_entry("application/x-unknown", "zz", "linux", "amd64")});
       },
       ErrorCode::not_found, "available: none"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeStore store;
    store.tag("t", c.build(store), "");
    auto got = resolve(store, request_for("t"));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(Resolve, IndexCycleIsBounded) {
  FakeStore store;
  // An index that lists itself cannot be built by content addressing, so
  // build a deep chain instead: each level wraps the previous one.
  auto img = build_image(store, "linux", "amd64", "");
  std::string inner = index_json(media_type::kOciIndex, {index_entry(media_type::kOciManifest, img.manifest, "linux", "amd64")});
  store.put(inner);
  for (int i = 0; i < 5; ++i) {
    inner = index_json(media_type::kOciIndex, {index_entry(media_type::kOciIndex, inner, "", "")});
    store.put(inner);
  }
  store.tag("deep", inner, "");
  auto got = resolve(store, request_for("deep"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::limit_exceeded);
}

}  // namespace
}  // namespace hashsieve::image
