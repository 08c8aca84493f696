// Streaming, atomic import of a reference-set source into the catalog.
//
// Rows flow from a source reader straight into the exact-index writer (which
// spills sorted runs to disk past its memory budget) and the label table, so
// memory stays bounded whatever the input size. The new version is built in a
// temporary directory and switched in with one rename; an import that fails
// or is killed leaves the previous version of the set in use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/reference_class.h"
#include "hashsieve/refset/source.h"

namespace hashsieve::refset {

struct ImportRequest {
  std::string name;
  SourceFormat format = SourceFormat::nsrl_v3;
  // Default: known for NSRL, malicious for ClamAV and VirusShare; required
  // for hash lists, which can be either.
  std::optional<ReferenceClass> set_class;
  std::string path;
  // The source is an SDBF digest file (sdhash's stream or block form) instead
  // of a hash list: a similarity set, kept with its digest names. `format` is
  // then ignored; the class defaults to malicious.
  bool sdbf_digests = false;
  SourceOptions source_options;
  std::size_t memory_budget = std::size_t{512} << 20;  // for the index writer's sort runs
  bool force = false;  // re-import even when the source's fingerprint is unchanged
};

struct ImportOutcome {
  RefsetManifest manifest;
  bool unchanged = false;           // same fingerprint as the installed version: nothing done
  std::vector<Warning> warnings;    // the first kMaxKeptWarnings; manifest.warnings counts all
  static constexpr std::size_t kMaxKeptWarnings = 100;
};

// The fingerprint of a source as it would be imported: SHA-256 over the
// format, the class, the suspicious-category configuration and the bytes of
// every file read (for NSRL v2 also NSRLProd.txt).
Result<std::string> source_fingerprint(const ImportRequest& request, ReferenceClass set_class);

Result<ImportOutcome> import_refset(const RefsetCatalog& catalog, const ImportRequest& request);

}  // namespace hashsieve::refset
