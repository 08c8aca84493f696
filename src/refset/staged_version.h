// A new version of a reference set being written: it holds the set's lock,
// a private work directory with the label table and the exact-index writer,
// and publish() makes it the set's current version with one rename. Dropping
// a StagedVersion without publishing removes its work directory, so failed
// imports and builds leave the installed version untouched.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/refset/exact_index.h"
#include "hashsieve/refset/importer.h"
#include "sqlite_handle.h"

namespace hashsieve::refset {

class StagedVersion {
 public:
  // Locks the set (one writer at a time), clears leftovers of killed runs and
  // opens a fresh work directory.
  static Result<StagedVersion> begin(const RefsetCatalog& catalog, const std::string& name,
                                     std::size_t memory_budget);

  const std::filesystem::path& dir() const { return work_; }
  std::uint32_t version() const { return version_; }
  sqlite3* labels() const { return labels_.get(); }
  ExactIndexWriter& writer() { return *writer_; }
  // Writes a label row (id, name, version, newline-separated categories).
  Status add_label(std::uint32_t id, const std::string& name, const std::string& version,
                   const std::string& categories);

  // Finishes the index, fills the manifest's counts, version and time, writes
  // it, and switches `current` to this version. Older versions are removed.
  Result<RefsetManifest> publish(RefsetManifest manifest);

  StagedVersion(StagedVersion&&) noexcept;
  StagedVersion& operator=(StagedVersion&&) = delete;
  ~StagedVersion();

 private:
  struct Lock;
  StagedVersion() = default;

  std::string set_dir_;
  std::filesystem::path work_;
  std::uint32_t version_ = 0;
  std::unique_ptr<Lock> lock_;
  SqliteDb labels_;
  SqliteStmt insert_label_;
  std::unique_ptr<ExactIndexWriter> writer_;
  bool published_ = false;
};

std::string utc_now();

// Lowercase hex SHA-256 of `text` (fingerprints).
std::string sha256_hex(std::string_view text);

// The outcome of an import or build whose source has the fingerprint of the
// installed version: nothing to do. nullopt when the set is new or differs.
std::optional<ImportOutcome> unchanged_outcome(const RefsetCatalog& catalog, const std::string& name,
                                               const std::string& fingerprint);

}  // namespace hashsieve::refset
