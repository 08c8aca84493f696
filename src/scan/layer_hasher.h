// Hashing one layer's entries: the "hash once" step with the sieve.
// Private to the scan module (scanner.cpp and the tests use it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/image/layer_entries.h"
#include "hashsieve/scan/facts.h"
#include "external_scan.h"

namespace hashsieve::scan {

struct LayerHashOptions {
  unsigned threads = 2;
  std::uint64_t max_buffered_file_bytes = std::uint64_t{32} << 20;
  std::uint64_t max_inflight_bytes = std::uint64_t{128} << 20;
  // True when the bytes are an exact hit in a known-good set now: the sieve
  // then skips the similarity digests. Called from worker threads.
  std::function<bool(const digest::CryptoDigests&)> is_known;
  // Called on the reading thread after each regular file is read.
  std::function<void(std::uint64_t bytes)> on_file_read;
  // Third-party scanners for the files not known at hash time: run while
  // the bytes are in memory (on the worker that hashed them; a streamed file
  // from its spool), so a first scan reads no layer twice for them.
  std::vector<const scanners::ExternalScanner*> external_scanners;
};

struct LayerHashStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t similarity_skipped = 0;
  std::uint64_t peak_inflight_bytes = 0;
};

// Reads every entry of `entries` in order (one thread) and hashes regular
// files on `threads` workers: crypto first (MD5, SHA-1, SHA-256, CRC32 in one
// pass), then, unless is_known, SDBF, TLSH, ssdeep and (ELF files held in
// memory) the .rodata digests. One record per entry,
// in tar order. Does not call entries.finish().
// With external scanners, `external` (when given) receives, by record index,
// the outcome of each file scanned at hash time. A streamed file that could
// not be spooled is left out (the caller reads it again); an unavailable
// scanner fails the call.
Result<std::vector<FileRecord>> hash_layer(image::LayerEntries& entries, const LayerHashOptions& options,
                                           LayerHashStats& stats,
                                           std::map<std::size_t, ExternalOutcome>* external = nullptr);

}  // namespace hashsieve::scan
