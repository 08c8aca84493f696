// Drift of one running container: the files its writable layer added,
// modified or deleted (GET /changes), each added or modified regular file
// fetched alone (GET /archive), hashed and classified with the scan
// module's matchers, plus the runtime's own evidence:
//   - a new executable (ELF magic, or "#!" with an exec bit)   suspicious
//   - a modified file of the image                             modified
//   - a file deleted from the image                            modified
//   - a hit of a third-party scanner: ClamAV/clamd             malicious
//                                     YARA                     suspicious
// Similarity to known-bad references comes from the similarity matcher, as
// in an image scan. A file's verdict is its worst evidence, unknown without.
//
// A full scan (DriftOptions::full) reads the container's whole filesystem
// from GET /export instead, streamed through the image module's tar reader
// (its limits and path confinement), and hashes and classifies every regular
// file as an image scan would; /changes still marks which of them drifted
// (the drift evidence above) and lists the deleted ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/image/layer_entries.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::runtime {

inline constexpr std::string_view kDriftSet = "drift";  // Evidence::set of the runtime's own evidence

struct DriftOptions {
  // Larger drifted files are not fetched: a recorded limit_exceeded error.
  std::uint64_t max_file_bytes = std::uint64_t{64} << 20;
  scan::ScanThresholds thresholds;
  // Scan every file of the container from /export, not only the drift.
  bool full = false;
  // Limits of the export tar in a full scan (max_file_bytes above still
  // decides which files are hashed: larger ones are recorded errors).
  image::ArchiveLimits export_limits;
};

struct DriftFile {
  std::string path;  // absolute, as /changes reports it
  ChangeKind change = ChangeKind::added;  // unchanged: an undrifted file of a full scan
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // permission bits
  std::string sha256;      // hex; "" for deleted files
  bool new_executable = false;
  scan::Verdict verdict = scan::Verdict::unknown;
  std::vector<scan::Evidence> evidence;
};

// Something that could not be scanned. `path` is "" for the container as a whole.
struct DriftError {
  std::string path;
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

struct ContainerScan {
  ContainerSummary container;
  std::vector<DriftFile> files;     // sorted by path (a full scan: every regular file too)
  std::vector<DriftError> errors;
  std::uint64_t skipped = 0;        // directories, symlinks, hard links (and, in a full scan, devices) not read
  bool full = false;                // a full scan from /export
  scan::Verdict verdict = scan::Verdict::known;  // worst file verdict; known without drift
  // The image's scan (store::ScanRecord) when one is stored; 0 = image not scanned.
  std::int64_t image_scan_id = 0;
  std::string image_verdict;
};

// True for ELF magic, or for "#!" with any exec bit in `mode`.
bool is_executable(std::span<const std::uint8_t> head, std::uint32_t mode);

class DriftScanner {
 public:
  // `sets`, `paths` and `externals` must outlive the scanner; `paths` may be null.
  DriftScanner(const std::vector<refset::LoadedRefset>& sets, const scan::PathIndex* paths,
               std::vector<const scanners::ExternalScanner*> externals, DriftOptions options);

  // Scans one container. Problems with single files are recorded in
  // ContainerScan::errors and the scan goes on; an error is returned only
  // when the container's changes cannot be read at all (gone, engine down).
  Result<ContainerScan> scan(Engine& engine, const ContainerSummary& container) const;

 private:
  Status scan_file(Engine& engine, const std::string& id, DriftFile& file, ContainerScan& out) const;
  // Digests, matchers, drift evidence and third-party scanners for one file's bytes.
  Status classify_bytes(DriftFile& file, std::span<const std::uint8_t> bytes, ContainerScan& out) const;
  Result<ContainerScan> scan_full(Engine& engine, const ContainerSummary& container,
                                  std::vector<Change> changes) const;

  std::vector<const scanners::ExternalScanner*> externals_;
  DriftOptions options_;
  std::vector<std::unique_ptr<scan::Matcher>> matchers_;
};

}  // namespace hashsieve::runtime
