// An OCI image layout directory (opencontainers/image-spec image-layout.md)
// as a BlobStore: "oci-layout", "index.json", "blobs/sha256/<hex>".
#pragma once

#include <memory>
#include <string>

#include "blob_store.h"

namespace hashsieve::image {

class OciLayoutStore final : public BlobStore {
 public:
  // Checks the oci-layout marker and that index.json exists.
  static Result<std::unique_ptr<OciLayoutStore>> open(const std::string& dir);

  // "" is index.json itself (an image index), a tag is looked up through the
  // org.opencontainers.image.ref.name annotation of index.json's entries, a
  // digest names a blob.
  Result<FetchedManifest> fetch_manifest(const std::string& reference) override;
  Result<std::string> read_blob(const Descriptor& blob) override;
  Result<std::unique_ptr<ByteSource>> open_blob(const Descriptor& blob) override;

  // The blob's path, confined to the layout: the digest must be sha256 with
  // 64 lowercase hex digits and the canonical path must stay inside `dir`.
  Result<std::string> blob_path(const std::string& digest) const;

 private:
  explicit OciLayoutStore(std::string root) : root_(std::move(root)) {}
  std::string root_;  // canonical
};

// Splits "PATH[:tag]": the text after the last ':' is a tag when it has no '/'.
struct OciLocation {
  std::string path;
  std::string tag;
};
OciLocation split_oci_location(const std::string& location);

}  // namespace hashsieve::image
