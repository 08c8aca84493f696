#include "hashsieve/scanners/scanner_set.h"

#include "hashsieve/scanners/clamav.h"
#include "hashsieve/scanners/yara.h"

namespace hashsieve::scanners {

std::vector<const ExternalScanner*> ScannerSet::pointers() const {
  std::vector<const ExternalScanner*> out;
  out.reserve(scanners.size());
  for (const auto& s : scanners) out.push_back(s.get());
  return out;
}

Result<ScannerSet> open_scanners(const ScannerConfig& config) {
  if (!config.clamav_dbs.empty() && !config.clamd_socket.empty()) {
    return Error(ErrorCode::invalid_argument,
                 "a ClamAV database and a clamd socket are both configured: pick one ClamAV path");
  }
  ScannerSet set;
  if (!config.clamav_dbs.empty()) {
    ClamavOptions o;
    o.database_paths = config.clamav_dbs;
    o.limits = config.limits;
    auto s = open_clamav(o);
    if (!s.ok()) return std::move(s).error().with_context("ClamAV");
    set.scanners.push_back(std::move(s).value());
  }
  if (!config.clamd_socket.empty()) {
    ClamdOptions o;
    o.socket_path = config.clamd_socket;
    o.limits = config.limits;
    auto s = connect_clamd(o);
    if (!s.ok()) return std::move(s).error().with_context("clamd");
    set.scanners.push_back(std::move(s).value());
  }
  if (!config.yara_rules.empty()) {
    YaraOptions o;
    o.rules_dir = config.yara_rules;
    o.limits = config.limits;
    auto s = open_yara(o);
    if (!s.ok()) return std::move(s).error().with_context("YARA");
    for (auto& w : s->warnings) set.warnings.push_back({std::string("YARA: ").append(w.message)});
    set.scanners.push_back(std::move(s->value));
  }
  return set;
}

}  // namespace hashsieve::scanners
