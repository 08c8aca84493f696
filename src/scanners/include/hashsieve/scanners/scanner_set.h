// The third-party scanners a command or the service was configured with,
// opened together. `hashsieve runtime`, `hashsieve scan`, `hashsieve worker`
// and `serve` all take the same three options, so they are opened in one
// place and report the same errors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::scanners {

struct ScannerConfig {
  // ClamAV in process (libclamav): database files or directories. Excludes
  // clamd_socket: one ClamAV path per configuration.
  std::vector<std::string> clamav_dbs;
  // ClamAV through a running clamd (INSTREAM on its unix socket).
  std::string clamd_socket;
  // YARA through libyara: the *.yar / *.yara files of this directory.
  std::string yara_rules;
  ScanLimits limits;

  bool empty() const { return clamav_dbs.empty() && clamd_socket.empty() && yara_rules.empty(); }
};

// The opened scanners, in the order ClamAV (libclamav or clamd), YARA.
struct ScannerSet {
  std::vector<std::unique_ptr<ExternalScanner>> scanners;
  std::vector<Warning> warnings;  // e.g. YARA compiler warnings

  std::vector<const ExternalScanner*> pointers() const;
};

// Opens every configured scanner. Errors carry the scanner's name as context
// ("ClamAV: ...", "clamd: ...", "YARA: ..."); both ClamAV paths at once is
// invalid_argument. An empty config opens nothing and succeeds.
Result<ScannerSet> open_scanners(const ScannerConfig& config);

}  // namespace hashsieve::scanners
