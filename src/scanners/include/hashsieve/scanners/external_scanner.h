// Third-party scanners behind one interface.
//
// hashsieve's own verdicts come from hash matching; ExternalScanner runs an
// outside engine (ClamAV through libclamav or clamd, YARA through libyara) on
// the files the scan selects: a running container's drifted files and,
// when configured, an image's unknown files. Each adapter reports its name,
// its engine version and its signature version, so a cached result can be
// invalidated when either changes.
//
// Errors never escape as exceptions or crashes: every problem is a Result
// error. The codes callers branch on:
//   unsupported      the path is not a regular file (FIFO, socket, device):
//                    skipped without opening it for blocking reads
//   limit_exceeded   the input is larger than ScanLimits::max_bytes, or the
//                    engine ran out of its time budget; nothing is scanned
//                    silently in part
//   unavailable      the engine went away (clamd socket missing, daemon died)
//   not_found, permission_denied, io_error   file access, with the path
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::scanners {

// One match: which engine, which signature or rule.
struct ScanFinding {
  std::string scanner;    // ExternalScanner::name(), e.g. "clamav", "clamd", "yara"
  std::string signature;  // ClamAV signature name ("Win.Test.EICAR_HDB-1"), or YARA rule name
  std::vector<std::string> tags;  // YARA rule tags; empty for ClamAV

  bool operator==(const ScanFinding&) const = default;
};

struct ScanLimits {
  // Inputs larger than this are refused with limit_exceeded before any byte
  // is handed to the engine. Engines that have their own size limits
  // (libclamav's max file/scan size) are configured to at least this value,
  // so a file within the limit is scanned completely.
  std::uint64_t max_bytes = std::uint64_t{256} << 20;
  // Wall-clock budget per scan. libclamav and clamd honour milliseconds; YARA
  // counts whole seconds, so its budget is rounded up.
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

class ExternalScanner {
 public:
  virtual ~ExternalScanner() = default;

  // Stable short name; it appears in every ScanFinding::scanner.
  virtual std::string name() const = 0;
  // Engine version, e.g. "1.4.6" (ClamAV), "4.2.3" (YARA).
  virtual std::string version() const = 0;
  // What the engine matches against, so results can be cached per version:
  // ClamAV "<n> signatures, db <version>, sha256:<hex of the database files>",
  // clamd its VERSION database part, YARA "<n> rules, sha256:<hex of the rule files>".
  virtual std::string signature_version() const = 0;

  // Thread safety: every adapter is safe to use from several threads at once
  // after construction (scan_* are const and share only read-only engine
  // state, or open one connection per call).

  // Scans bytes already in memory (a file streamed out of an image layer).
  // `display_name` names the input in errors.
  virtual Result<std::vector<ScanFinding>> scan_buffer(std::span<const std::uint8_t> bytes,
                                                       const std::string& display_name) const = 0;

  // Scans a file on disk. Refuses non-regular files (unsupported) and files
  // over the size limit (limit_exceeded) before reading them; large files are
  // mapped, not copied.
  virtual Result<std::vector<ScanFinding>> scan_file(const std::string& path) const;

  virtual const ScanLimits& limits() const = 0;
};

// The size check shared by every adapter: limit_exceeded naming the input,
// its size and the limit.
Status check_size(std::uint64_t size, const ScanLimits& limits, const std::string& display_name);

}  // namespace hashsieve::scanners
