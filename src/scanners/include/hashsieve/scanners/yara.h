// YARA adapter over libyara: every *.yar / *.yara file of a rules directory,
// compiled once and shared by all scanning threads.
#pragma once

#include <memory>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/scanners/external_scanner.h"

namespace hashsieve::scanners {

inline constexpr std::string_view kYaraScannerName = "yara";

struct YaraOptions {
  // Directory whose *.yar and *.yara files (not subdirectories) are compiled,
  // in name order, into one rule set (the "default" namespace, so rules may
  // refer to each other across files). Files pulled in with `include` are
  // compiled but not part of signature_version().
  std::string rules_dir;
  ScanLimits limits;
};

// Compiles the rules. Errors: not_found (no such directory), invalid_argument
// (no rule files in it), parse_error naming "<file>:<line>: <message>" for
// every error the compiler reports in the first failing file. Compiler
// warnings (slow strings, ...) come back as warnings.
Result<WithWarnings<std::unique_ptr<ExternalScanner>>> open_yara(const YaraOptions& options);

}  // namespace hashsieve::scanners
