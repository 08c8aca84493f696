// Option parsing shared by `hashsieve scan` and `hashsieve runtime` (and the
// small helpers both need), so the same flag means and checks the same thing
// in both commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/verdict.h"
#include "hashsieve/scanners/scanner_set.h"

namespace hashsieve::cli {

// A decimal number without sign or spaces (at most 19 digits).
std::optional<std::uint64_t> parse_uint(const std::string& text);

// The current time as UTC ISO 8601 ("2026-11-23T06:00:00Z").
std::string utc_now();

// --format: "table", "json" or "sarif"; an error message otherwise.
std::optional<std::string> check_format(const std::string& value);

// --fail-on: a verdict other than known; nullopt (a usage error) otherwise.
std::optional<scan::Verdict> parse_fail_on(const std::string& value);
inline constexpr const char* kFailOnError = "--fail-on must be malicious, suspicious, modified or unknown";

// The third-party scanner flags, one meaning everywhere (see
// scanners::ScannerConfig): --clamav-db PATH (repeatable), --clamd-socket
// PATH, --yara-rules DIR.
bool is_external_scanner_flag(const std::string& flag);
// Records `value` of such a flag in `config`.
void apply_external_scanner_flag(const std::string& flag, const std::string& value, scanners::ScannerConfig& config);
// The usage error of an inconsistent combination (both ClamAV paths), if any.
std::optional<std::string> check_external_scanner_flags(const scanners::ScannerConfig& config);

// The named sets from the catalog in `data_dir`; every installed set when
// `names` is empty (then `names` is filled in).
Result<std::vector<refset::LoadedRefset>> load_named_sets(const std::string& data_dir,
                                                          std::vector<std::string>& names);

}  // namespace hashsieve::cli
