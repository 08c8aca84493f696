// Report writers: JSON (docs/report-schema.md, schema_version 1), SARIF 2.1.0
// and a plain-text table. Each takes its own options; none reads CLI flags.
// Output is a pure function of the reports and options (no clock, no host
// names), so golden files can pin it byte for byte.
#pragma once

#include <string>
#include <vector>

#include "hashsieve/scan/scanner.h"

namespace hashsieve::scan {

inline constexpr int kReportSchemaVersion = 1;

struct JsonReportOptions {
  bool all_files = false;        // list known files too (default: every non-known file)
  std::string tool_version;      // "tool": {"name": "hashsieve", "version": ...}
  std::string scanned_at;        // UTC ISO 8601, "" to leave out
};
// One image: a report object. Several (--all-platforms): an array of them.
std::string write_json_report(const std::vector<ImageReport>& reports, const JsonReportOptions& options);

// The summary object of the JSON report alone (what the store keeps).
std::string summary_json(const ScanSummary& summary);

// A file's evidence as the JSON report's "evidence" array (for stores that
// keep files apart from the report).
std::string evidence_json(const std::vector<Evidence>& evidence);

struct SarifReportOptions {
  std::string tool_version;
};
// One run per image, one result per flagged file (malicious, suspicious,
// modified), rule ids "hashsieve.<verdict>".
std::string write_sarif_report(const std::vector<ImageReport>& reports, const SarifReportOptions& options);

struct TableReportOptions {
  bool all_files = false;
  std::size_t max_path_width = 60;
};
std::string write_table_report(const std::vector<ImageReport>& reports, const TableReportOptions& options);

}  // namespace hashsieve::scan
