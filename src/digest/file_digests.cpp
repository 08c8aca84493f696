#include "hashsieve/digest/file_digests.h"

#include <algorithm>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/ssdeep.h"

namespace hashsieve::digest {

Result<FileDigests> compute_digests(const std::string& name, std::span<const std::uint8_t> data,
                                    const DigestSelection& selection) {
  // The streaming hashers take the input in cache-sized pieces, one after the
  // other, so each piece is read from memory once while it is still in L2.
  constexpr std::size_t kPiece = 256 * 1024;
  FileDigests out;
  out.size = data.size();
  std::optional<MultiHasher> crypto;
  if (!selection.crypto.empty()) crypto.emplace(selection.crypto);
  std::optional<TlshHasher> tlsh;
  if (selection.tlsh) tlsh.emplace();
  std::optional<SsdeepHasher> ssdeep;
  if (selection.ssdeep) {
    ssdeep.emplace();
    // Knowing the length up front lets libfuzzy pick its block size in one pass.
    ssdeep->set_expected_length(data.size());
  }
  for (std::size_t offset = 0; offset < data.size(); offset += kPiece) {
    const auto piece = data.subspan(offset, std::min(kPiece, data.size() - offset));
    if (crypto) crypto->update(piece);
    if (tlsh) tlsh->update(piece);
    if (ssdeep) ssdeep->update(piece);
  }
  if (crypto) out.crypto = crypto->finish();
  if (tlsh) out.tlsh = tlsh->finish();
  if (ssdeep) {
    auto text = ssdeep->finish();
    if (!text.ok()) return std::move(text).error().with_context(name + ": ssdeep");
    out.ssdeep = std::move(text).value();
  }
  // SDBF needs its whole 32 MiB processing chunk at once (ranks look ahead).
  if (selection.sdbf) out.sdbf = make_sdbf_digests(name, data, selection.sdbf_policy);
  return out;
}

Result<FileDigests> digest_file(const std::string& path, const DigestSelection& selection) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return std::move(file).error();
  return compute_digests(path, file->bytes(), selection);
}

}  // namespace hashsieve::digest
