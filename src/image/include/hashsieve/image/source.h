// Where an image comes from, and how its layers are read.
//
// An ImageSource turns a reference into one ResolvedImage per selected
// platform (manifest, config diff IDs, layer descriptors), then opens each
// layer as a LayerEntries stream. Four sources implement it:
//   registry    "host[:port]/repo[:tag][@digest]"  OCI distribution API over libcurl
//   docker-archive:PATH[:repo:tag]                  the tar that `docker save` writes (first image, or by tag)
//   oci:PATH[:tag]                                  an OCI image layout directory
//   dir:PATH                                        a root filesystem (one pseudo-layer, no cache key)
// Sources verify every digest they are given (manifest, config, blob, diff ID)
// and report a mismatch as ErrorCode::integrity_error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/layer_entries.h"

namespace hashsieve::image {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64", ...
  std::string variant;       // "v8", or empty
  // "linux/amd64", "linux/arm64/v8"
  std::string to_string() const;
  static Result<Platform> parse(const std::string& text);
  bool operator==(const Platform&) const = default;
};

struct LayerDescriptor {
  std::string media_type;  // as in the manifest; "" for dir: sources
  std::string digest;      // "sha256:<hex>" of the stored (maybe compressed) blob; "" for dir:
  std::string diff_id;     // "sha256:<hex>" of the uncompressed tar (config rootfs.diff_ids); "" for dir:
  std::uint64_t size = 0;  // stored blob size as the manifest declares it
};

// One platform's image: what a scan report names and what the pipeline walks.
struct ResolvedImage {
  std::string reference;        // as the user gave it, e.g. "localhost:5000/team/app:1.0"
  std::string repository;       // "team/app" (registry), or "" for local sources
  std::string manifest_digest;  // "sha256:<hex>" of the image manifest bytes ("" for dir:)
  std::string config_digest;
  Platform platform;
  std::vector<LayerDescriptor> layers;  // layers[0] is applied first
  std::vector<std::string> skipped;     // index entries not scanned (attestations, unknown types), for the report
};

struct PlatformSelection {
  std::optional<Platform> platform;  // default: linux/amd64 (the host's)
  bool all_platforms = false;
};

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string bearer_token;          // used as is, no token exchange
  std::string docker_config_path;    // default ~/.docker/config.json when no explicit credentials
};

struct RetryPolicy {
  int max_attempts = 4;                   // for 429, 5xx and connection failures
  std::uint32_t initial_backoff_ms = 200; // doubled per attempt, honours Retry-After
  std::uint32_t max_backoff_ms = 5000;
};

struct SourceOptions {
  PlatformSelection platforms;
  RegistryCredentials credentials;
  RetryPolicy retry;
  bool insecure = false;   // plain HTTP to the registry
  std::string ca_file;     // extra CA bundle for HTTPS
  ArchiveLimits limits;    // applied by every LayerEntries the source opens
  std::string scratch_dir; // the only place a source may write (may stay unused)
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The images to scan: one per selected platform.
  virtual Result<std::vector<ResolvedImage>> resolve() = 0;
  // Opens layer `index` of `image` for reading. The stream verifies the blob
  // digest and the diff ID when it reaches its end (LayerEntries::finish).
  virtual Result<std::unique_ptr<LayerEntries>> open_layer(const ResolvedImage& image, std::size_t index) = 0;
};

// Picks the source from the reference's transport prefix (docker-archive:,
// oci:, dir:, else a registry reference).
Result<std::unique_ptr<ImageSource>> open_image_source(const std::string& reference, const SourceOptions& options);

}  // namespace hashsieve::image
