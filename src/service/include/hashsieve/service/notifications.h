// Registry notification envelopes (distribution 2.8; docs formats.md section
// 5): which events the service acts on. Only manifest `push` events with a
// repository and a valid sha256 digest become scan requests; pulls (our own
// fetches cause them), blob events, deletes and mounts are counted and
// ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::service {

struct ManifestPush {
  std::string repository;
  std::string digest;
  std::string tag;       // "" for a push by digest (e.g. platform manifests of an index)
  std::string event_id;  // the registry's UUID, for logs
  bool operator==(const ManifestPush&) const = default;
};

struct ParsedEnvelope {
  std::vector<ManifestPush> pushes;  // de-duplicated by (repository, digest), first tag kept
  std::uint64_t ignored = 0;         // events that are not manifest pushes
};

// True for the manifest and index media types of Docker and OCI (schema 1 too).
bool is_manifest_media_type(std::string_view media_type);

// True for the envelope content types the webhook accepts (events v1/v2 and
// plain application/json; parameters such as charset are allowed).
bool is_envelope_content_type(std::string_view content_type);

// Parses one envelope. Malformed JSON, a missing `events` array or a manifest
// push with an invalid repository or digest is a parse_error (the whole
// envelope is refused, so nothing of it is acted on).
Result<ParsedEnvelope> parse_envelope(std::string_view body);

// Compares secrets in time independent of where they differ (length leaks).
bool constant_time_equals(std::string_view a, std::string_view b);

}  // namespace hashsieve::service
