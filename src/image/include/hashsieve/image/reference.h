// Registry image references: "host[:port]/repo[:tag][@sha256:<hex>]".
//
// The grammar is the distribution reference grammar (formats.md section 6):
// repository components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/', tag
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. hashsieve scans private registries, so
// there is no implicit Docker Hub: the first component must name the registry
// host (it contains '.' or ':' or is "localhost"), otherwise the reference is
// rejected with a message that says so. Without a tag or digest the tag is
// "latest". Only sha256 digests are accepted (the only algorithm we verify).
#pragma once

#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve::image {

struct ImageReference {
  std::string registry;    // "localhost:5000", "registry.example.org", "[::1]:5000"
  std::string repository;  // "team/app"
  std::string tag;         // "1.0"; "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:<64 lowercase hex>" or ""

  static Result<ImageReference> parse(const std::string& text);
  // What a manifest request names: the digest when there is one, else the tag.
  const std::string& manifest_reference() const { return digest.empty() ? tag : digest; }
  // Canonical text: host/repo[:tag][@digest].
  std::string to_string() const;
  bool operator==(const ImageReference&) const = default;
};

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool is_valid_sha256_digest(const std::string& digest);
// True when `name` matches the repository grammar (and is at most 255 bytes).
bool is_valid_repository(const std::string& name);
bool is_valid_tag(const std::string& tag);

}  // namespace hashsieve::image
