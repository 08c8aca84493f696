// Parsing image manifests, indexes and configs (Docker schema 2 and OCI), and
// choosing the platforms to scan. formats.md section 6 lists the media types.
//
// Unknown things inside an index (artifact manifests, attestations, unknown
// media types) are not errors: select_platforms skips them and says why.
// Schema 1 manifests are ErrorCode::unsupported; unknown layer media types are
// ErrorCode::unsupported naming the type; malformed JSON or missing fields are
// ErrorCode::parse_error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/source.h"

namespace hashsieve::image {

namespace media_type {
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
// The Accept list for manifest requests, most preferred first.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media_type

// True for the layer media types open_tar_layer reads (docker gzip and
// foreign, OCI tar/gzip/zstd and their nondistributable variants).
bool is_supported_layer_media_type(std::string_view media_type);

struct Descriptor {
  std::string media_type;
  std::string digest;
  std::uint64_t size = 0;
  std::optional<Platform> platform;  // index entries only
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
};

struct ImageManifest {
  std::string media_type;  // kDockerManifest or kOciManifest
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageIndex {
  std::string media_type;  // kDockerManifestList or kOciIndex
  std::vector<Descriptor> manifests;
};

using ParsedManifest = std::variant<ImageManifest, ImageIndex>;

// Parses a manifest body. `content_type` is what the server or the referring
// descriptor said ("" when unknown); the body's own mediaType wins when both
// are present and the body's is a known manifest type. Layer media types are
// checked only by check_image_layers, so an artifact manifest parses.
Result<ParsedManifest> parse_manifest(std::string_view body, std::string_view content_type);

// ErrorCode::unsupported naming the first layer whose media type we cannot read.
Status check_image_layers(const ImageManifest& manifest);

struct ImageConfig {
  Platform platform;                  // os/architecture/variant of the config
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, layer order
};
Result<ImageConfig> parse_image_config(std::string_view body);

// Why an index entry is not an image we scan, or nullopt when it is one.
// Attestation manifests (platform unknown/unknown, or the
// vnd.docker.reference.type annotation), artifactType entries and unknown
// media types are skipped.
std::optional<std::string> skip_reason(const Descriptor& entry);

// True when `entry_platform` satisfies `wanted`: os and architecture equal,
// and the variant equal when `wanted` names one.
bool platform_matches(const Platform& wanted, const Platform& entry_platform);

// "sha256:<hex>" of bytes.
std::string sha256_digest_of(std::string_view bytes);

}  // namespace hashsieve::image
