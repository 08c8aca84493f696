// Every digest of one input, computed from one read of its bytes: the crypto
// hashes NSRL uses, SDBF (as sdhash would print it), TLSH and ssdeep. This is
// the "hash once" step that `hashsieve hash` and the scan pipeline share.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_policy.h"
#include "hashsieve/digest/tlsh.h"

namespace hashsieve::digest {

struct DigestSelection {
  CryptoSelection crypto = CryptoSelection::all();
  bool sdbf = true;
  bool tlsh = true;
  bool ssdeep = true;
  SdbfPolicy sdbf_policy;  // sdhash's defaults: stream below 16 MiB, 16 KiB blocks above
};

struct FileDigests {
  std::uint64_t size = 0;
  CryptoDigests crypto;
  std::vector<Sdbf> sdbf;            // empty below 512 bytes; one per segment above 128 MiB
  std::optional<TlshDigest> tlsh;    // nullopt below 256 bytes or with too little variation
  std::optional<std::string> ssdeep;
};

// Digests of an in-memory input. `name` becomes the SDBF digest name.
Result<FileDigests> compute_digests(const std::string& name, std::span<const std::uint8_t> data,
                                    const DigestSelection& selection);

// Maps the regular file at `path` once and computes the selected digests.
Result<FileDigests> digest_file(const std::string& path, const DigestSelection& selection);

}  // namespace hashsieve::digest
