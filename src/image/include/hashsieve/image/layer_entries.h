// Reading one layer's entries as a stream: a tar (uncompressed, gzip or zstd)
// read by libarchive, or a directory walk for dir: sources. Nothing is
// extracted to disk: file contents are read straight from the stream.
//
// Paths are normalised and confined: every entry path is relative to the
// image root, uses '/', has no "." or ".." components and no leading '/'.
// An entry whose path would escape the root (after "..") is rejected with
// ErrorCode::invalid_argument naming the path; link targets are kept as text
// and never followed on the host. The root directory entry itself ("./")
// is not reported.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve::image {

// Limits against decompression bombs, each configurable. Exceeding one is
// ErrorCode::limit_exceeded with the limit's name in the message.
struct ArchiveLimits {
  std::uint64_t max_layer_bytes = 64ULL << 30;   // uncompressed bytes of one layer
  std::uint64_t max_entries = 2'000'000;         // entries of one layer
  std::uint64_t max_ratio = 1000;                // uncompressed / compressed bytes (checked after 1 MiB)
  std::uint64_t max_file_bytes = 16ULL << 30;    // one file's declared size
};

enum class EntryKind {
  regular,
  directory,
  symlink,
  hardlink,          // link_target is the (normalised) path it links to, inside the image
  whiteout,          // ".wh.<name>": path is the hidden path "<dir>/<name>"
  opaque_whiteout,   // "<dir>/.wh..wh..opq": path is "<dir>" ("" for the image root)
  device,            // character or block device, FIFO or socket: recorded, never read
};

struct LayerEntry {
  std::string path;          // normalised, see above
  EntryKind kind = EntryKind::regular;
  std::uint64_t size = 0;    // bytes of content (regular files only)
  std::uint32_t mode = 0;    // permission bits and setuid/setgid/sticky
  std::string link_target;   // symlink or hardlink target as stored
};

class LayerEntries {
 public:
  virtual ~LayerEntries() = default;
  // The next entry, or nullopt at the end of the layer. AUFS metadata
  // (".wh..wh.plnk" and the like) is skipped.
  virtual Result<std::optional<LayerEntry>> next() = 0;
  // Reads content of the current regular entry; returns 0 at its end.
  // Unread content is skipped by the next call to next().
  virtual Result<std::size_t> read(std::span<std::uint8_t> out) = 0;
  // Called after next() returned nullopt: drains the stream and verifies
  // the blob digest and the diff ID (ErrorCode::integrity_error on mismatch).
  virtual Status finish() = 0;
};

// A pull stream of bytes: a registry blob over HTTP, a byte range of a
// docker-archive, a file of an OCI layout.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; returns 0 at the end of the stream.
  virtual Result<std::size_t> read(std::span<std::uint8_t> out) = 0;
};

// What the tar reader checks when the layer ends. Empty strings are not checked.
struct LayerExpectations {
  std::string media_type;   // picks the decompressor; magic bytes must agree
  std::string blob_digest;  // "sha256:<hex>" of the bytes read from the ByteSource
  std::string diff_id;      // "sha256:<hex>" of the uncompressed tar
  std::uint64_t blob_size = 0;  // 0: unknown
};

// Reads a layer tar (uncompressed, gzip or zstd: the media type decides, the
// magic bytes confirm) from `blob` with libarchive, streaming. An unsupported
// media type is ErrorCode::unsupported.
Result<std::unique_ptr<LayerEntries>> open_tar_layer(std::unique_ptr<ByteSource> blob,
                                                     const LayerExpectations& expect,
                                                     const ArchiveLimits& limits);

}  // namespace hashsieve::image
