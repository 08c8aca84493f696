// Running the configured third-party scanners on one file of an image.
// Private to the scan module (scanner.cpp and layer_hasher.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::scan {

// What the scanners said about one file. Never cached (the signature
// databases change daily; docs/adr/0023-external-scanners-on-image-scans.md).
struct ExternalOutcome {
  std::vector<Evidence> evidence;
  std::vector<Warning> warnings;  // per-file failures: over a limit, unsupported
  bool scanned = false;           // the bytes were handed to the scanners
};

// The largest ScanLimits::max_bytes of `scanners`: a file above it is read
// by none of them (0 without scanners).
std::uint64_t max_scan_bytes(const std::vector<const scanners::ExternalScanner*>& scanners);

// Warnings for a file of `size` bytes that no scanner reads (over every
// limit): one per scanner, naming the file, its size, the limit and the scanner.
ExternalOutcome over_limit_outcome(const std::vector<const scanners::ExternalScanner*>& scanners,
                                   const std::string& path, std::uint64_t size);

// Runs every scanner on the bytes of the image file `path` (no leading '/').
// A scanner that is unavailable (clamd went away) fails the whole call,
// naming the scanner and the file: nothing may be reported clean that was not
// scanned. Other per-file failures (limit_exceeded, unsupported, ...) become
// warnings naming the file and the scanner.
Result<ExternalOutcome> run_external_scanners(const std::vector<const scanners::ExternalScanner*>& scanners,
                                              std::span<const std::uint8_t> bytes, const std::string& path);

}  // namespace hashsieve::scan
