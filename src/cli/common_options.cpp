#include "common_options.h"

#include <chrono>
#include <ctime>

namespace hashsieve::cli {

std::optional<std::uint64_t> parse_uint(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::string> check_format(const std::string& value) {
  if (value == "table" || value == "json" || value == "sarif") return std::nullopt;
  return "--format must be table, json or sarif";
}

std::optional<scan::Verdict> parse_fail_on(const std::string& value) {
  auto verdict = scan::parse_verdict(value);
  if (!verdict.ok() || *verdict == scan::Verdict::known) return std::nullopt;
  return *verdict;
}

bool is_external_scanner_flag(const std::string& flag) {
  return flag == "--clamav-db" || flag == "--clamd-socket" || flag == "--yara-rules";
}

void apply_external_scanner_flag(const std::string& flag, const std::string& value, scanners::ScannerConfig& config) {
  if (flag == "--clamav-db") config.clamav_dbs.push_back(value);
  if (flag == "--clamd-socket") config.clamd_socket = value;
  if (flag == "--yara-rules") config.yara_rules = value;
}

std::optional<std::string> check_external_scanner_flags(const scanners::ScannerConfig& config) {
  if (!config.clamav_dbs.empty() && !config.clamd_socket.empty()) {
    return "--clamav-db excludes --clamd-socket (pick one ClamAV path)";
  }
  return std::nullopt;
}

Result<std::vector<refset::LoadedRefset>> load_named_sets(const std::string& data_dir,
                                                          std::vector<std::string>& names) {
  auto catalog = refset::RefsetCatalog::open(data_dir);
  if (!catalog.ok()) return std::move(catalog).error();
  if (names.empty()) {
    auto all = catalog->list();
    if (!all.ok()) return std::move(all).error();
    for (const auto& m : *all) names.push_back(m.name);
  }
  std::vector<refset::LoadedRefset> sets;
  for (const auto& name : names) {
    auto loaded = catalog->load(name);
    if (!loaded.ok()) return std::move(loaded).error();
    sets.push_back(std::move(loaded).value());
  }
  return sets;
}

}  // namespace hashsieve::cli
