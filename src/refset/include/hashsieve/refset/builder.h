// `refset build`: hash files, directory trees and .deb packages into a set
// that holds every digest of every file with its path and package. This is how
// an operator makes a similarity set of known-bad tools, or a path-aware
// known-good set of a distribution's files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/importer.h"

namespace hashsieve::refset {

struct BuildRequest {
  std::string name;
  ReferenceClass set_class = ReferenceClass::known;
  // Files (named as given), directories (their files named "/<relative path>",
  // as in a root filesystem) and .deb packages (their files named as installed).
  std::vector<std::string> paths;
  std::uint64_t max_file_bytes = std::uint64_t{1} << 30;  // larger files are skipped with a warning
  std::size_t memory_budget = std::size_t{256} << 20;
  unsigned threads = 1;
  bool force = false;
};

// The set's files: similarity.sdbf (SDBF digests named "<package>:<path>" or
// "<path>"), similarity.tlsh and similarity.ssdeep ("<digest>\t<name>\t<size>"
// lines), for ELF files the same of their .rodata section in
// similarity.rodata.{sdbf,tlsh,ssdeep} (size = the section's; a damaged
// section table is a warning and leaves that file without them), the exact
// index, and one label per file (name = path, version = package).
Result<ImportOutcome> build_refset(const RefsetCatalog& catalog, const BuildRequest& request);

}  // namespace hashsieve::refset
