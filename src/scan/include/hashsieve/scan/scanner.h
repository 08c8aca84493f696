// The scan pipeline (Trivy's shape):
//   source -> resolve -> layers -> walk -> hash once -> per-layer facts
//   (cached by diff ID + hasher versions) -> apply whiteouts -> match ->
//   classify -> report.
// Facts are cached; matching is not, so a changed reference set takes effect
// on the next scan without re-hashing. Third-party scanners (ClamAV, YARA)
// optionally run on every file whose hash verdict is not known; their results
// are not cached either (docs/adr/0023-external-scanners-on-image-scans.md).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/source.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/external.h"
#include "hashsieve/scan/facts.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/external_scanner.h"
#include "hashsieve/store/store.h"

namespace hashsieve::scan {

struct ScanProgress {
  std::size_t layer = 0;         // 0-based index of the layer being read
  std::size_t layers = 0;
  std::uint64_t files = 0;       // regular files hashed so far (this scan)
  std::uint64_t bytes = 0;       // content bytes read so far (this scan)
  std::uint64_t total_bytes = 0; // sum of the layers' declared blob sizes (0: unknown)
};

struct ScanOptions {
  ScanThresholds thresholds;
  unsigned threads = 2;            // hashing workers (the entry reader is one more thread)
  bool use_cache = true;           // read and write layer facts in the store
  // The cache key's hasher part; tests override it to simulate a new version.
  std::string hasher_versions = scan::hasher_versions();
  // Files up to this size are read into memory and hashed by a worker; larger
  // ones are streamed chunk-wise on the reader thread (SDBF in block mode,
  // which sdhash uses for them anyway). Never below 16 MiB (sdhash's
  // stream/block boundary), so streamed files always get block digests.
  std::uint64_t max_buffered_file_bytes = std::uint64_t{32} << 20;
  // Bytes of file contents buffered and waiting for or in a worker; bounds
  // memory whatever the layer holds.
  // (The budget is shared by the layers in flight.)
  std::uint64_t max_inflight_bytes = std::uint64_t{128} << 20;
  // Layers read and hashed at the same time, each on its own reader thread
  // sharing nothing but the store. 1 reads them one after another.
  unsigned layers_in_flight = 2;
  // Called from the reader threads, one call at a time.
  std::function<void(const ScanProgress&)> progress;
  // Polled before each layer (from the reader threads); true stops the scan
  // with ErrorCode::unavailable ("scan cancelled"), so a worker pool can shut
  // down within one layer.
  std::function<bool()> cancelled;
  // Third-party scanners run on every regular file (hidden ones too) whose
  // verdict from hash matching is not known; each finding is evidence
  // (evidence_from_finding). Empty: off. Must outlive the Scanner and be
  // safe to call from several threads (every adapter is). A scanner that is
  // unavailable fails the scan; other per-file failures (over the scanner's
  // ScanLimits::max_bytes, ...) are report warnings naming file and scanner.
  std::vector<const scanners::ExternalScanner*> external_scanners;
};

// What the pipeline did, to check the cache works and to report cost.
struct ScanStats {
  std::size_t layers = 0;
  std::size_t layers_from_cache = 0;  // facts read from the store, nothing hashed
  std::size_t layers_hashed = 0;      // read from the source and hashed
  std::size_t layers_rehashed_for_sieve = 0;  // cached, but a now-unknown file lacked similarity digests
  std::uint64_t files_hashed = 0;
  std::uint64_t bytes_hashed = 0;
  std::uint64_t similarity_skipped = 0;  // files the sieve spared similarity digests
  // Files handed to the external scanners (at hash time or re-read).
  std::uint64_t files_externally_scanned = 0;
  // Layers read again only to give files to the external scanners (cached
  // facts, or a large file that could not be spooled): only those files'
  // bytes are read, nothing is hashed but their SHA-256 (checked against the facts).
  std::size_t layers_reread_for_external = 0;
};

// One regular file of the image (every layer's copy, hidden or not).
struct FileFinding {
  std::string path;
  std::size_t layer = 0;                 // the layer that added it
  std::optional<std::size_t> hidden_by;  // the layer that hid it (whiteout, opaque dir, replacement)
  std::uint64_t size = 0;
  std::string sha256;
  Verdict verdict = Verdict::unknown;
  std::vector<Evidence> evidence;
};

// reduction_ratio = known / files: the fraction of the image's files a human
// need not look at (0 when there are no files). Hidden files count: they ship
// in the image's blobs.
struct ScanSummary {
  std::uint64_t files = 0;
  std::uint64_t hidden = 0;
  std::array<std::uint64_t, 5> counts{};  // indexed by Verdict
  double reduction_ratio = 0;
  // The worst file verdict (see Verdict); known when the image has no files.
  Verdict verdict = Verdict::known;
  std::uint64_t count(Verdict v) const { return counts[static_cast<std::size_t>(v)]; }
};

struct SetInfo {
  std::string name;
  std::string set_class;
  std::uint32_t version = 0;
};

struct ImageReport {
  image::ResolvedImage image;
  std::vector<SetInfo> sets;
  ScanThresholds thresholds;
  std::vector<FileFinding> files;  // layer order, then tar order
  ScanSummary summary;
  ScanStats stats;
  std::vector<ExternalScannerInfo> scanners;  // the external scanners that ran, in option order
  std::vector<Warning> warnings;   // e.g. the cache could not be written
};

ScanSummary summarize(const std::vector<FileFinding>& files);

class Scanner {
 public:
  // `store` may be null (no cache). `sets` and `paths` must outlive the
  // scanner; `paths` may be null (no "modified" verdicts).
  Scanner(store::Store* store, const std::vector<refset::LoadedRefset>& sets, const PathIndex* paths,
          ScanOptions options);

  Result<ImageReport> scan(image::ImageSource& source, const image::ResolvedImage& image);

 private:
  bool known_at_hash_time(const digest::CryptoDigests& d) const;

  store::Store* store_;
  const std::vector<refset::LoadedRefset>& sets_;
  ScanOptions options_;
  std::vector<const refset::LoadedRefset*> known_sets_;
  std::vector<std::unique_ptr<Matcher>> matchers_;
};

}  // namespace hashsieve::scan
