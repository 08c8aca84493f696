// SHA-256 over a list of files (their names relative to a base, sizes and
// contents), the "signature version" of engines whose databases carry no
// version of their own (custom ClamAV databases, YARA rule directories).
#pragma once

#include <string>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::scanners::detail {

struct NamedFile {
  std::string name;  // what enters the hash: a path relative to the configured root
  std::string path;  // where to read it
};

// "sha256:<hex>". Names, sizes and contents are framed so two different file
// sets cannot hash alike by moving bytes across file boundaries.
Result<std::string> fingerprint_files(const std::vector<NamedFile>& files);

// The regular files directly inside `dir` whose names end in one of
// `extensions` (every regular file when `extensions` is empty), sorted by
// name. not_found / permission_denied / invalid_argument (not a directory)
// name the directory.
Result<std::vector<NamedFile>> list_files(const std::string& dir, const std::vector<std::string>& extensions);

}  // namespace hashsieve::scanners::detail
