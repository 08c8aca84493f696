// Third-party scanners (ClamAV, YARA; scanners::ExternalScanner) as a source
// of evidence: one mapping from a finding to Evidence, shared by image scans
// (ScanOptions::external_scanners) and the runtime drift scanner.
#pragma once

#include <string>

#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::scan {

// A ClamAV signature (libclamav or clamd) names malware: malicious. A YARA
// rule describes a pattern that needs a human's judgement: suspicious.
// set = the scanner's name, reference = the signature or rule, algorithm =
// the scanner's name.
Evidence evidence_from_finding(const scanners::ScanFinding& finding);

// Which third-party scanner ran, for the report (so a verdict can be traced
// to the signature database it came from).
struct ExternalScannerInfo {
  std::string name;
  std::string version;
  std::string signature_version;
  bool operator==(const ExternalScannerInfo&) const = default;
};

ExternalScannerInfo describe(const scanners::ExternalScanner& scanner);

}  // namespace hashsieve::scan
