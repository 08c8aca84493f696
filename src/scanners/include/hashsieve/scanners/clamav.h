// ClamAV adapters: in-process through libclamav, or a running clamd over its
// unix socket (INSTREAM). Both report findings under their own name
// ("clamav", "clamd") so a report says which path produced them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::scanners {

inline constexpr std::string_view kClamavScannerName = "clamav";
inline constexpr std::string_view kClamdScannerName = "clamd";

struct ClamavOptions {
  // Database files (.cvd, .cld, .hdb, .hsb, .ndb, .ldb, ...) or directories
  // of them, loaded with cl_load in this order. At least one is required.
  std::vector<std::string> database_paths;
  ScanLimits limits;
  // Where libclamav makes its per-scan scratch directory (and unpacks
  // archives): empty means libclamav's default ($TMPDIR, else /tmp). Every
  // scan creates and removes a directory there, so a tmpfs is faster.
  std::string temp_dir;
};

// Loads and compiles the databases (seconds for the official ones). The
// engine's own size limits are raised to limits.max_bytes, and its internal
// limits (archive recursion, file count, scan time) report a finding named
// "Heuristics.Limits.Exceeded.*" instead of stopping silently. A database
// that does not load is a parse_error carrying libclamav's own message.
Result<std::unique_ptr<ExternalScanner>> open_clamav(const ClamavOptions& options);

struct ClamdOptions {
  std::string socket_path;  // clamd's LocalSocket
  ScanLimits limits;        // keep max_bytes <= clamd's StreamMaxLength
  std::size_t chunk_bytes = std::size_t{1} << 16;  // INSTREAM chunk size
};

// Connects once to ask clamd for its VERSION (engine and database), so a
// missing or unreachable daemon is reported here. Every scan then opens its
// own connection: one INSTREAM per connection, as clamd expects. A missing
// socket or a refused connection is unavailable, a socket the process may not
// open permission_denied, a daemon that closes the connection mid-stream
// unavailable, a daemon that does not answer within limits.timeout
// limit_exceeded.
Result<std::unique_ptr<ExternalScanner>> connect_clamd(const ClamdOptions& options);

}  // namespace hashsieve::scanners
