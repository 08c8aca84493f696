// The reference sets installed in a data directory, and lookups in them.
//
// On disk (<data-dir>/refsets/<name>/):
//   current -> v<N>        symlink, switched atomically when an import completes
//   v<N>/manifest.json     what the set is: format, class, source, fingerprint, counts
//   v<N>/exact.idx         ExactIndex: MD5/SHA-1/SHA-256 -> label value
//   v<N>/labels.db         SQLite: label id -> name, version, categories;
//                          sets made by `refset build` also have a `file`
//                          table (path, package, sha256, size) indexed by path
//   v<N>/similarity.sdbf   SDBF digests (sdbf imports and builds), one per line
//   v<N>/similarity.tlsh   builds: "<TLSH>\t<name>" lines
//   v<N>/similarity.ssdeep builds: "<ssdeep>\t<name>" lines
//   v<N>/similarity.idx    builds: the similarity index (similarity_index.h)
//   v<N>/similarity.rodata.{sdbf,tlsh,ssdeep}
//                          builds: the same for the .rodata section of ELF
//                          files (section_digests.h), sizes = section sizes;
//                          sets built before them have none (no index:
//                          .rodata lookups scan every reference)
// A set is only ever read through `current`, so a failed or interrupted import
// (which writes into a fresh v<N+1>) leaves the previous version in use.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/tlsh.h"
#include "hashsieve/refset/exact_index.h"
#include "hashsieve/refset/reference_class.h"
#include "hashsieve/refset/section_digests.h"
#include "hashsieve/refset/similarity_index.h"

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
  // "sdbf" or "ssdeep" (score 0..100, higher is closer) or "tlsh" (distance,
  // lower is closer); with the suffix kRodataSuffix (":.rodata") for hits of
  // the .rodata section digests.
  std::string algorithm;
  int score = 0;
  // Size in bytes of the referenced input, for the matcher's size gate
  // (docs/detection.md). SDBF digests carry it; TLSH and ssdeep lines carry it
  // since sets built with a third "size" column; nullopt for older sets.
  // For .rodata hits: the size of the reference's .rodata section.
  std::optional<std::uint64_t> reference_size;
};

inline constexpr std::string_view kRodataSuffix = ":.rodata";

// Everything a similarity lookup needs about one query file, computed once
// (the scan computes it while hashing the file and asks every set with it).
struct SimilarityQuery {
  std::vector<digest::Sdbf> sdbf;          // FileDigests::sdbf
  std::optional<digest::TlshDigest> tlsh;  // FileDigests::tlsh
  std::optional<std::string> ssdeep;       // FileDigests::ssdeep
  // sample_content_keys(file bytes): lets sets with an index find SDBF
  // candidates without scanning. Empty = no keys: SDBF falls back to brute force.
  std::vector<std::uint32_t> content_keys;
  // rodata_digests(file bytes) for ELF files; nullopt = no .rodata lookup.
  std::optional<SectionDigests> rodata;
};

// Builds a SimilarityQuery from a file's bytes: SDBF, TLSH, ssdeep, the
// content keys and (ELF files) the .rodata digests in one call (`name`
// becomes the SDBF digest name). A malformed ELF section table gives no
// .rodata digests (the whole-file ones still describe the file).
Result<SimilarityQuery> make_similarity_query(const std::string& name, std::span<const std::uint8_t> data);

struct SimilarityThresholds {
  int sdbf_min_score = 21;     // hits score >= this (sdhash's customary 21)
  int tlsh_max_distance = 50;  // hits at distance <= this
  int ssdeep_min_score = 1;    // hits score >= this; < 0 skips ssdeep
  // .rodata digests (SimilarityQuery::rodata against similarity.rodata.*):
  // the calibrated .rodata rule's thresholds (docs/detection.md). Always a
  // scan of every .rodata reference (there is no index for them).
  int rodata_sdbf_min_score = 18;
  int rodata_tlsh_max_distance = 120;
  int rodata_ssdeep_min_score = 50;  // < 0 skips ssdeep
};

// Thresholds up to which the index is used; beyond them (a weaker SDBF score,
// a larger TLSH distance) lookups scan every reference, since the index was
// measured (>= 99 % recall against brute force) only within them.
inline constexpr int kSdbfIndexedMinScore = 21;
inline constexpr int kTlshIndexedMaxDistance = 60;
static_assert(kTlshIndexedMaxDistance < 12 * (static_cast<int>(kTlshMaxLengthDiff) + 1),
              "the TLSH index probes length bands for this distance");

// One file of a set made by `refset build` (files_at_path).
struct ReferenceFile {
  std::string path;     // as recorded, without a leading '/'
  std::string package;  // "" for files not from a package
  std::string sha256;   // lowercase hex
  std::uint64_t size = 0;
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
  //
  // Similarity lookups. Every hit is scored exactly (sdbf_score with the
  // query first, tlsh_distance, ssdeep_compare); the index only chooses
  // which references are scored. All lookups are const and thread-safe: a
  // scan may call them on one LoadedRefset from several threads.
  //
  // All algorithms at once: the preferred call. SDBF uses the index when the
  // set has one (sets made by `refset build`), the query has content keys and
  // sdbf_min_score >= kSdbfIndexedMinScore; TLSH uses it when
  // tlsh_max_distance <= kTlshIndexedMaxDistance; otherwise they scan all
  // references (SDBF with the SIMD PreparedSdbfSet). Hits come per
  // algorithm: SDBF (per query digest), then TLSH, then ssdeep, then the
  // same for query.rodata against the set's .rodata references (algorithms
  // "sdbf:.rodata", "tlsh:.rodata", "ssdeep:.rodata").
  std::vector<SimilarityHit> similar(const SimilarityQuery& query, const SimilarityThresholds& thresholds) const;
  // SDBF alone, without content keys: always a brute-force scan (this is the
  // path of sdbf imports, which have only Bloom filters). Hits >= min_score.
  std::vector<SimilarityHit> similar(const digest::Sdbf& query, int min_score) const;
  // TLSH alone (sets made by `refset build`); hits at distance <= max_distance.
  std::vector<SimilarityHit> similar(const digest::TlshDigest& query, int max_distance) const;
  // ssdeep alone ("blocksize:hash1:hash2"), against the references whose
  // block size is compatible (equal, half or double); hits >= min_score.
  // A malformed query digest gives no hits.
  std::vector<SimilarityHit> similar_ssdeep(std::string_view query, int min_score) const;
  // How many .rodata references the set holds, per algorithm.
  struct RodataCounts {
    std::size_t sdbf = 0, tlsh = 0, ssdeep = 0;
  };
  RodataCounts rodata_references() const;
  // True when the set has a similarity index (similarity.idx).
  bool has_similarity_index() const;

  // The files a built set recorded at `image_path` (a leading '/' is
  // ignored: "/bin/ls" and "bin/ls" are the same). Several entries when
  // several packages ship the path. Empty for sets not made by `refset
  // build` or paths it does not hold. Lets a scan tell "this /bin/ls is not
  // the distribution's /bin/ls".
  Result<std::vector<ReferenceFile>> files_at_path(const std::string& image_path) const;

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
