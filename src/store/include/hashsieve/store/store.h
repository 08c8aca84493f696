// Persistence for the scan pipeline: per-layer facts (the cache that makes a
// second scan of a layer hash nothing) and scan results (what a later REST API
// lists). One interface, one embedded backend (SQLite, sqlite_store.cpp).
//
// The store holds text and numbers only; it does not know what a digest is.
// The scan module encodes digests (hex, sdhash text, "T1..." TLSH, ssdeep
// text) and decodes them back, validating everything it reads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::store {

// The cache key of one layer's facts: the layer's diff ID (sha256 of its
// uncompressed tar, so the same layer in two images shares its facts) and a
// string naming every hasher and its version. A new hasher version is a new
// key, so stale facts are never read; they stay until pruned.
struct LayerKey {
  std::string diff_id;          // "sha256:<hex>"
  std::string hasher_versions;  // e.g. "crypto/1;sdbf/sdhash-3.4;..."
  bool operator==(const LayerKey&) const = default;
};

// The kind of a layer entry, as stored. Mirrors image::EntryKind (the store
// does not depend on the image module); values are stored as these names.
enum class FactKind : std::uint8_t { regular, directory, symlink, hardlink, whiteout, opaque_whiteout, device };

const char* to_string(FactKind kind);
Result<FactKind> parse_fact_kind(const std::string& text);

// What hashing one entry of a layer found. Digest fields are empty when not
// computed (non-regular entries, or similarity digests the sieve skipped).
struct FileFacts {
  std::string path;
  FactKind kind = FactKind::regular;
  std::uint64_t size = 0;
  std::uint32_t mode = 0;
  std::string link_target;
  std::string md5, sha1, sha256, crc32;  // hex
  std::string sdbf;    // sdhash text, one digest per line ("" = none)
  std::string tlsh;    // "T1..." or ""
  std::string ssdeep;  // "blocksize:h1:h2" or ""
  std::string content_keys;  // sampled content keys for similarity-index lookups: 8 hex digits each
  // True when the similarity digests were attempted (an empty field then
  // means the input was too small or too uniform for that digest). False when
  // the sieve skipped them because the file was known at hashing time.
  bool similarity_computed = false;
  // The same digests of the file's ELF .rodata section (docs/adr/0012).
  // rodata_size is nullopt when there are none (not ELF, no .rodata, skipped
  // by the sieve, or facts written before they existed); the columns are
  // nullable (SQLite schema 2, PostgreSQL migration 0004).
  std::optional<std::uint64_t> rodata_size;
  std::string rodata_sdbf, rodata_tlsh, rodata_ssdeep;  // as sdbf/tlsh/ssdeep
  bool operator==(const FileFacts&) const = default;
};

// Every entry of one layer in tar order, including whiteout markers, so
// whiteouts can be applied from the cache alone.
struct LayerFacts {
  std::vector<FileFacts> files;
  bool operator==(const LayerFacts&) const = default;
};

// One finished scan of one image (platform), for listing.
struct ScanRecord {
  std::int64_t id = 0;          // assigned by put_scan_result
  std::string reference;        // as given by the user
  std::string image_digest;     // manifest digest, "" for dir:
  std::string platform;         // "linux/amd64"
  std::string scanned_at;       // UTC, ISO 8601
  std::string verdict;          // the image verdict
  std::string summary_json;     // the report's summary object
  bool operator==(const ScanRecord&) const = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // True when facts for `key` are stored. Postcondition of a successful
  // put_layer_facts(k, f): has_layer(k) is true and get_layer_facts(k) == f.
  virtual Result<bool> has_layer(const LayerKey& key) = 0;
  // The stored facts, or nullopt when there are none for `key`.
  virtual Result<std::optional<LayerFacts>> get_layer_facts(const LayerKey& key) = 0;
  // Stores (replacing) a layer's facts in one transaction: after a crash or
  // an error either the complete new facts or the previous state is stored,
  // never part of a layer.
  virtual Status put_layer_facts(const LayerKey& key, const LayerFacts& facts) = 0;

  // Appends a scan result; returns its id (> 0, increasing).
  virtual Result<std::int64_t> put_scan_result(const ScanRecord& record) = 0;
  // The newest `limit` scan results, newest first.
  virtual Result<std::vector<ScanRecord>> list_scan_results(std::size_t limit) = 0;
};

// Opens (creating if needed) <data_dir>/store.db in WAL mode. Safe to share
// between threads (calls are serialised) and between processes (SQLite locks;
// a busy database is waited for up to 10 s).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir);

}  // namespace hashsieve::store
