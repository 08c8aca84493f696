// The reference sets installed in a data directory, and lookups in them.
//
// On disk (<data-dir>/refsets/<name>/):
//   current -> v<N>        symlink, switched atomically when an import completes
//   v<N>/manifest.json     what the set is: format, class, source, fingerprint, counts
//   v<N>/exact.idx         ExactIndex: MD5/SHA-1/SHA-256 -> label value
//   v<N>/labels.db         SQLite: label id -> name, version, categories
// A set is only ever read through `current`, so a failed or interrupted import
// (which writes into a fresh v<N+1>) leaves the previous version in use.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/tlsh.h"
#include "hashsieve/refset/exact_index.h"
#include "hashsieve/refset/reference_class.h"

namespace hashsieve::refset {

struct RefsetManifest {
  std::string name;
  std::string format;              // source format ("nsrl-v3", "clamav", ...)
  ReferenceClass set_class = ReferenceClass::known;
  std::string source;              // the imported path
  std::string fingerprint;         // sha256 over format, options and source bytes
  std::string imported_at;         // UTC, ISO 8601
  std::uint32_t version = 0;
  std::uint64_t rows = 0;
  std::uint64_t products = 0;
  std::uint64_t warnings = 0;
  std::uint64_t md5_count = 0, sha1_count = 0, sha256_count = 0;
  std::uint64_t sdbf_count = 0;    // similarity references (sdbf imports)
  std::uint64_t index_bytes = 0;
};

// A label value stored in the exact index: label id plus flags. Flags are
// OR-ed when a hash occurs several times (e.g. in several NSRL packages), the
// label id with the smallest value is kept.
struct LabelValue {
  static constexpr std::uint32_t kSuspicious = 1;
  static constexpr std::uint32_t kMalicious = 2;
  static std::uint32_t encode(std::uint32_t label_id, std::uint32_t flags) { return (label_id << 2) | flags; }
  static std::uint32_t label(std::uint32_t value) { return value >> 2; }
  static std::uint32_t flags(std::uint32_t value) { return value & 3; }
  static std::uint32_t merge(std::uint32_t a, std::uint32_t b);
};

// One similarity hit: a reference digest of the set that scores >= the
// requested minimum against the query.
struct SimilarityHit {
  std::string set;
  ReferenceClass hit_class = ReferenceClass::known;
  std::string reference;  // the reference digest's name
  std::string algorithm;  // "sdbf" (score 0..100, higher is closer) or "tlsh" (distance, lower is closer)
  int score = 0;
};

// One exact hit in a reference set.
struct RefsetHit {
  std::string set;
  ReferenceClass hit_class = ReferenceClass::known;  // set class, raised by the hash's flags
  std::string digest_type;                            // "md5", "sha1", "sha256"
  std::string label;                                  // product name or signature name
  std::string version;
  std::vector<std::string> categories;
};

class LoadedRefset {
 public:
  const RefsetManifest& manifest() const { return manifest_; }
  // Exact lookups; the full hash is compared, so a prefix collision never hits.
  Result<std::optional<RefsetHit>> lookup(const digest::Md5Digest& d) const;
  Result<std::optional<RefsetHit>> lookup(const digest::Sha1Digest& d) const;
  Result<std::optional<RefsetHit>> lookup(const digest::Sha256Digest& d) const;
  // SDBF similarity against the set's reference digests (sdbf imports), by a
  // brute-force scan over the prepared set; hits scoring >= min_score.
  std::vector<SimilarityHit> similar(const digest::Sdbf& query, int min_score) const;
  // TLSH distance to every reference TLSH digest of the set (sets made by
  // `refset build`); hits at distance <= max_distance.
  std::vector<SimilarityHit> similar(const digest::TlshDigest& query, int max_distance) const;

  LoadedRefset(LoadedRefset&&) noexcept;
  LoadedRefset& operator=(LoadedRefset&&) noexcept;
  ~LoadedRefset();

 private:
  friend class RefsetCatalog;
  struct Labels;
  struct Similarity;
  LoadedRefset(RefsetManifest manifest, ExactIndex index, std::unique_ptr<Labels> labels,
               std::unique_ptr<Similarity> similarity);
  Result<std::optional<RefsetHit>> resolve(std::optional<std::uint32_t> value, const char* type) const;

  RefsetManifest manifest_;
  ExactIndex index_;
  std::unique_ptr<Labels> labels_;
  std::unique_ptr<Similarity> similarity_;
};

class RefsetCatalog {
 public:
  // Opens (creating if needed) <data_dir>/refsets.
  static Result<RefsetCatalog> open(const std::string& data_dir);

  Result<std::vector<RefsetManifest>> list() const;
  Result<RefsetManifest> manifest(const std::string& name) const;
  Result<LoadedRefset> load(const std::string& name) const;
  Status remove(const std::string& name);

  const std::string& root() const { return root_; }
  std::string set_dir(const std::string& name) const { return root_ + "/" + name; }

 private:
  explicit RefsetCatalog(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// Set names become directory names: 1-64 characters of [A-Za-z0-9._-], not
// starting with '.'.
Status validate_set_name(const std::string& name);

// The data directory: $HASHSIEVE_DATA_DIR, else $XDG_DATA_HOME/hashsieve,
// else ~/.local/share/hashsieve.
std::string default_data_dir();

Result<RefsetManifest> manifest_from_json(const std::string& text);
std::string manifest_to_json(const RefsetManifest& m);

}  // namespace hashsieve::refset
