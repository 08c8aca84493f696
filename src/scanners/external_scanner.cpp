#include "hashsieve/scanners/external_scanner.h"

#include "hashsieve/core/file.h"

namespace hashsieve::scanners {

Status check_size(std::uint64_t size, const ScanLimits& limits, const std::string& display_name) {
  if (size > limits.max_bytes) {
    return Error(ErrorCode::limit_exceeded,
                 display_name + ": " + std::to_string(size) + " bytes is over the scan limit of " +
                     std::to_string(limits.max_bytes) + " bytes");
  }
  return {};
}

Result<std::vector<ScanFinding>> ExternalScanner::scan_file(const std::string& path) const {
  // open_regular_file refuses FIFOs, sockets and devices without blocking,
  // and gives the size before anything is read or mapped.
  auto opened = open_regular_file(path);
  if (!opened.ok()) return std::move(opened).error();
  if (auto s = check_size(opened->size, limits(), path); !s.ok()) return std::move(s).error();
  auto mapped = MappedFile::open(path);
  if (!mapped.ok()) return std::move(mapped).error();
  // The file may have grown between the two opens.
  if (auto s = check_size(mapped->size(), limits(), path); !s.ok()) return std::move(s).error();
  return scan_buffer(mapped->bytes(), path);
}

}  // namespace hashsieve::scanners
