#include "hashsieve/image/manifest.h"

#include <gtest/gtest.h>

#include "image_builders.h"

namespace hashsieve::image {
namespace {

using testing::config_json;
using testing::manifest_json;

const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;

TEST(ParseManifest, ParsesEachKind) {
  const std::string config = config_json("linux", "amd64", {kDigest});
  struct Case {
    std::string name;
    std::string body;
    std::string content_type;
    bool want_index;
    std::string want_type;
  };
  const std::string docker = manifest_json(media_type::kDockerManifest, media_type::kDockerConfig, config,
                                           {{"application/vnd.docker.image.rootfs.diff.tar.gzip", "x"}});
  const std::string oci = manifest_json(media_type::kOciManifest, media_type::kOciConfig, config,
                                        {{"application/vnd.oci.image.layer.v1.tar+zstd", "x"}});
  const std::string list = testing::index_json(media_type::kDockerManifestList,
                                               {testing::index_entry(media_type::kDockerManifest, docker, "linux", "amd64")});
  const std::string index = testing::index_json(media_type::kOciIndex,
                                                {testing::index_entry(media_type::kOciManifest, oci, "linux", "arm64", "v8")});
  const std::string untyped_index = R"({"schemaVersion":2,"manifests":[]})";
  const Case cases[] = {
      {"docker schema2", docker, std::string(media_type::kDockerManifest), false, std::string(media_type::kDockerManifest)},
      {"oci manifest", oci, "", false, std::string(media_type::kOciManifest)},
      {"docker list", list, "", true, std::string(media_type::kDockerManifestList)},
      {"oci index", index, std::string(media_type::kOciIndex) + "; charset=utf-8", true, std::string(media_type::kOciIndex)},
      {"index without mediaType, typed by header", untyped_index, std::string(media_type::kOciIndex), true,
       std::string(media_type::kOciIndex)},
      {"index without any type, by shape", untyped_index, "application/json", true, std::string(media_type::kOciIndex)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = parse_manifest(c.body, c.content_type);
    ASSERT_TRUE(got.ok()) << got.error().message();
    if (c.want_index) {
      ASSERT_TRUE(std::holds_alternative<ImageIndex>(*got));
      EXPECT_EQ(std::get<ImageIndex>(*got).media_type, c.want_type);
    } else {
      ASSERT_TRUE(std::holds_alternative<ImageManifest>(*got));
      const auto& m = std::get<ImageManifest>(*got);
      EXPECT_EQ(m.media_type, c.want_type);
      EXPECT_EQ(m.layers.size(), 1u);
      EXPECT_EQ(m.config.digest, sha256_digest_of(config));
      EXPECT_EQ(m.config.size, config.size());
    }
  }
  auto parsed = parse_manifest(index, "");
  ASSERT_TRUE(parsed.ok());
  const auto& entry = std::get<ImageIndex>(*parsed).manifests.at(0);
  ASSERT_TRUE(entry.platform.has_value());
  EXPECT_EQ(entry.platform->to_string(), "linux/arm64/v8");
}

TEST(ParseManifest, RejectsBadManifests) {
  struct Case {
    std::string name;
    std::string body;
    std::string content_type;
    ErrorCode code;
    std::string message_part;
  };
  const std::string layer = R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + kDigest + R"(","size":1})";
  const std::string config_desc = R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kDigest + R"(","size":2})";
  const Case cases[] = {
      {"not json", "{", "", ErrorCode::parse_error, "not valid JSON"},
      {"not object", "[]", "", ErrorCode::parse_error, "not a JSON object"},
      {"schema1 by header", "{}", std::string(media_type::kDockerSchema1Signed), ErrorCode::unsupported, "schema 1"},
      {"schema1 by version", R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "", ErrorCode::unsupported, "schema 1"},
      {"schema 3", R"({"schemaVersion":3})", "", ErrorCode::unsupported, "schemaVersion 3"},
      {"no schemaVersion", R"({"mediaType":"application/vnd.oci.image.manifest.v1+json"})", "", ErrorCode::parse_error,
       "schemaVersion"},
      {"unknown type", R"({"schemaVersion":2,"mediaType":"application/x-helm"})", "", ErrorCode::unsupported,
       "application/x-helm"},
      {"no config", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})", "",
       ErrorCode::parse_error, "missing 'config'"},
      {"no layers", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
                        config_desc + "}",
       "", ErrorCode::parse_error, "'layers'"},
      {"bad digest", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
                         config_desc + R"(,"layers":[{"mediaType":"x","digest":"sha256:zz","size":1}]})",
       "", ErrorCode::parse_error, "invalid digest 'sha256:zz'"},
      {"negative size", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
                            config_desc + R"(,"layers":[{"mediaType":"x","digest":")" + kDigest + R"(","size":-1}]})",
       "", ErrorCode::parse_error, "'size'"},
      {"string size", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
                          config_desc + R"(,"layers":[{"mediaType":"x","digest":")" + kDigest + R"(","size":"1"}]})",
       "", ErrorCode::parse_error, "'size'"},
      {"mediaType not string", R"({"schemaVersion":2,"mediaType":5})", "", ErrorCode::parse_error, "not a string"},
      {"index manifests not array", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}})",
       "", ErrorCode::parse_error, "'manifests'"},
      {"layer annotations not strings", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
                                            config_desc + R"(,"layers":[)" + layer.substr(0, layer.size() - 1) +
                                            R"(,"annotations":{"a":1}}]})",
       "", ErrorCode::parse_error, "annotation 'a'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = parse_manifest(c.body, c.content_type);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), c.code);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(ParseManifest, IndexEntryWithOtherDigestAlgorithmIsKeptAsSkippable) {
  const std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                           R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:)" +
                           std::string(128, 'b') + R"(","size":3}]})";
  auto got = parse_manifest(body, "");
  ASSERT_TRUE(got.ok()) << got.error().message();
  const auto& entries = std::get<ImageIndex>(*got).manifests;
  ASSERT_EQ(entries.size(), 1u);
  auto reason = skip_reason(entries[0]);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("not sha256"), std::string::npos) << *reason;
}

TEST(LayerMediaTypes, SupportedAndUnsupported) {
  struct Case {
    std::string type;
    bool want;
  };
  const Case cases[] = {
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", true},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", true},
      {"application/vnd.oci.image.layer.v1.tar", true},
      {"application/vnd.oci.image.layer.v1.tar+gzip", true},
      {"application/vnd.oci.image.layer.v1.tar+zstd", true},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", true},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", true},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", true},
      {"application/vnd.oci.image.layer.v1.tar+bzip2", false},
      {"application/vnd.cncf.helm.chart.content.v1.tar+gzip", false},
      {"", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type);
    EXPECT_EQ(is_supported_layer_media_type(c.type), c.want);
  }
  ImageManifest m;
  m.layers.push_back(Descriptor{"application/vnd.oci.image.layer.v1.tar", kDigest, 1, {}, "", {}, {}});
  m.layers.push_back(Descriptor{"application/x-weird", kDigest, 1, {}, "", {}, {}});
  auto st = check_image_layers(m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::unsupported);
  EXPECT_NE(st.error().message().find("layer 1"), std::string::npos);
  EXPECT_NE(st.error().message().find("application/x-weird"), std::string::npos);
}

TEST(ParseImageConfig, ReadsPlatformAndDiffIds) {
  auto got = parse_image_config(config_json("linux", "arm", {kDigest, kDigest}, "v7"));
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->platform.to_string(), "linux/arm/v7");
  EXPECT_EQ(got->diff_ids.size(), 2u);
}

TEST(ParseImageConfig, RejectsBadConfigs) {
  struct Case {
    std::string name;
    std::string body;
    std::string message_part;
  };
  const Case cases[] = {
      {"not json", "nope", "not valid JSON"},
      {"no rootfs", R"({"os":"linux","architecture":"amd64"})", "'rootfs'"},
      {"no diff_ids", R"({"os":"linux","architecture":"amd64","rootfs":{}})", "diff_ids"},
      {"bad diff id", R"({"os":"linux","rootfs":{"diff_ids":["sha256:12"]}})", "not a sha256 digest"},
      {"os not string", R"({"os":1,"rootfs":{"diff_ids":[]}})", "'os'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = parse_image_config(c.body);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), ErrorCode::parse_error);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(SkipReason, ClassifiesIndexEntries) {
  struct Case {
    std::string name;
    Descriptor entry;
    std::string want_part;  // "" = not skipped
  };
  auto entry = [](std::string type, std::optional<Platform> p, std::string artifact = "",
                  std::map<std::string, std::string> ann = {}) {
    return Descriptor{std::move(type), kDigest, 10, std::move(p), std::move(artifact), std::move(ann), {}};
  };
  const Case cases[] = {
      {"image", entry(std::string(media_type::kOciManifest), Platform{"linux", "amd64", ""}), ""},
      {"nested index", entry(std::string(media_type::kOciIndex), std::nullopt), ""},
      {"attestation platform", entry(std::string(media_type::kOciManifest), Platform{"unknown", "unknown", ""}),
       "unknown/unknown"},
      {"attestation annotation",
       entry(std::string(media_type::kOciManifest), std::nullopt, "", {{"vnd.docker.reference.type", "attestation-manifest"}}),
       "attestation-manifest"},
      {"artifact", entry(std::string(media_type::kOciManifest), std::nullopt, "application/vnd.example.sbom"),
       "application/vnd.example.sbom"},
      {"unknown type", entry("application/vnd.cncf.helm.config.v1+json", std::nullopt), "unknown media type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = skip_reason(c.entry);
    if (c.want_part.empty()) {
      EXPECT_FALSE(got.has_value()) << *got;
    } else {
      ASSERT_TRUE(got.has_value());
      EXPECT_NE(got->find(c.want_part), std::string::npos) << *got;
    }
  }
}

TEST(PlatformMatches, VariantRules) {
  struct Case {
    std::string wanted, entry;
    bool want;
  };
  const Case cases[] = {
      {"linux/amd64", "linux/amd64", true},   {"linux/amd64", "linux/arm64", false},
      {"linux/arm64", "linux/arm64/v8", true}, {"linux/arm64/v8", "linux/arm64", true},
      {"linux/arm/v7", "linux/arm/v6", false}, {"linux/arm/v7", "linux/arm", false},
      {"windows/amd64", "linux/amd64", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.wanted + " vs " + c.entry);
    EXPECT_EQ(platform_matches(*Platform::parse(c.wanted), *Platform::parse(c.entry)), c.want);
  }
}

TEST(Sha256DigestOf, KnownVector) {
  EXPECT_EQ(sha256_digest_of("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace hashsieve::image
