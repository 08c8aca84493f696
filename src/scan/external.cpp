#include "hashsieve/scan/external.h"

#include <algorithm>

#include "external_scan.h"
#include "hashsieve/scanners/clamav.h"

namespace hashsieve::scan {

Evidence evidence_from_finding(const scanners::ScanFinding& finding) {
  const bool clam = finding.scanner == scanners::kClamavScannerName || finding.scanner == scanners::kClamdScannerName;
  Evidence e;
  e.verdict = clam ? Verdict::malicious : Verdict::suspicious;
  e.set = finding.scanner;
  e.set_class = std::string(to_string(e.verdict));
  e.reference = finding.signature;
  e.algorithm = finding.scanner;
  return e;
}

ExternalScannerInfo describe(const scanners::ExternalScanner& scanner) {
  return {scanner.name(), scanner.version(), scanner.signature_version()};
}

std::uint64_t max_scan_bytes(const std::vector<const scanners::ExternalScanner*>& scanners) {
  std::uint64_t out = 0;
  for (const auto* s : scanners) out = std::max(out, s->limits().max_bytes);
  return out;
}

namespace {

Warning file_warning(const std::string& path, const std::string& scanner, const Error& e) {
  // check_size's message names the input ("/path: N bytes is over the scan
  // limit of M bytes"); prefix the scanner so the warning says who skipped it.
  return {scanner + " did not scan /" + path + ": " + e.message()};
}

}  // namespace

ExternalOutcome over_limit_outcome(const std::vector<const scanners::ExternalScanner*>& scanners,
                                   const std::string& path, std::uint64_t size) {
  ExternalOutcome out;
  for (const auto* s : scanners) {
    if (auto st = scanners::check_size(size, s->limits(), "/" + path); !st.ok()) {
      out.warnings.push_back(file_warning(path, s->name(), st.error()));
    }
  }
  return out;
}

Result<ExternalOutcome> run_external_scanners(const std::vector<const scanners::ExternalScanner*>& scanners,
                                              std::span<const std::uint8_t> bytes, const std::string& path) {
  ExternalOutcome out;
  out.scanned = true;
  for (const auto* s : scanners) {
    auto findings = s->scan_buffer(bytes, "/" + path);
    if (!findings.ok()) {
      if (findings.error().code() == ErrorCode::unavailable) {
        return Error(ErrorCode::unavailable, "external scanner " + s->name() + " is unavailable while scanning /" +
                                                 path + ": " + findings.error().message());
      }
      out.warnings.push_back(file_warning(path, s->name(), findings.error()));
      continue;
    }
    for (const auto& f : *findings) out.evidence.push_back(evidence_from_finding(f));
  }
  return out;
}

}  // namespace hashsieve::scan
