// The storage side shared by the registry and the OCI layout sources: fetch a
// manifest by tag or digest, read a small blob, stream a large one. resolve()
// (resolve.cpp) does everything else once, over this interface: digest checks
// of manifests and configs, index walking, platform selection, diff IDs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/layer_entries.h"
#include "hashsieve/image/manifest.h"
#include "hashsieve/image/source.h"

namespace hashsieve::image {

struct FetchedManifest {
  std::string body;
  std::string media_type;       // Content-Type or the referring descriptor's type ("" if unknown)
  std::string claimed_digest;   // Docker-Content-Digest or the descriptor's digest ("" if none)
};

// Manifests and configs larger than this are refused (limit_exceeded):
// real ones are a few KiB, and the bound keeps a hostile server from
// making us buffer gigabytes.
inline constexpr std::size_t kMaxManifestBytes = 4 << 20;

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // `reference` is a tag or "sha256:<hex>".
  virtual Result<FetchedManifest> fetch_manifest(const std::string& reference) = 0;
  // Reads a whole small blob (at most kMaxManifestBytes); resolve() checks its digest.
  virtual Result<std::string> read_blob(const Descriptor& blob) = 0;
  // Streams a blob; the consumer verifies its digest at the end.
  virtual Result<std::unique_ptr<ByteSource>> open_blob(const Descriptor& blob) = 0;
};

struct ResolveRequest {
  std::string display_reference;  // ResolvedImage::reference
  std::string repository;         // ResolvedImage::repository
  std::string manifest_reference; // tag or digest to start from
  PlatformSelection platforms;
};

// Fetches and verifies the manifest (and any nested index), selects the
// platforms, and loads each selected image's config.
Result<std::vector<ResolvedImage>> resolve(BlobStore& store, const ResolveRequest& request);

// Checks that `body` hashes to `digest` (integrity_error naming `what` otherwise).
Status verify_digest(std::string_view body, const std::string& digest, const std::string& what);

}  // namespace hashsieve::image
