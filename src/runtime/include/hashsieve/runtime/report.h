// The runtime report: JSON with one entry per container (docs/cli.md,
// `hashsieve runtime`), and the mapping onto the image report so the table
// and SARIF writers of the scan module print containers too.
#pragma once

#include <string>
#include <vector>

#include "hashsieve/runtime/drift.h"
#include "hashsieve/scan/scanner.h"

namespace hashsieve::runtime {

inline constexpr int kRuntimeReportSchemaVersion = 1;

// Files of the scan that are drift (all but a full scan's unchanged ones).
std::size_t drifted_files(const ContainerScan& scan);

// One container's entry (also what the store keeps as result_json).
std::string container_json(const ContainerScan& scan);

// {"schema_version", "tool", "scanned_at", "containers": [...]}; scanned_at
// "" leaves it out.
std::string write_runtime_json(const std::vector<ContainerScan>& scans, const std::string& tool_version,
                               const std::string& scanned_at);

// One ImageReport per container: reference "container NAME (ID12) of IMAGE",
// one FileFinding per drifted file (deleted ones included, without digest;
// a full scan: every file).
std::vector<scan::ImageReport> to_image_reports(const std::vector<ContainerScan>& scans);

}  // namespace hashsieve::runtime
