// Reads the files a Debian package installs: the regular files of the
// data.tar.* member of the .deb (an ar archive), with paths as installed
// ("/usr/bin/socat"). Internal to the refset module.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve::refset {

struct DebInfo {
  std::string package;  // "<Package>_<Version>_<Architecture>" from the control file, else the file's stem
};

// Calls `on_file(package, path, bytes)` for every regular file of the
// package's data archive, in archive order (the control member comes first in
// a .deb, so `package` is already known). Files larger than `max_file_bytes` are skipped
// with a warning through `on_warning`. Corrupt or truncated packages, and
// packages without a data member, are errors.
Result<DebInfo> read_deb(const std::string& path, std::uint64_t max_file_bytes,
                         const std::function<Status(const std::string&, const std::string&, std::span<const std::uint8_t>)>& on_file,
                         const std::function<void(std::string)>& on_warning);

}  // namespace hashsieve::refset
