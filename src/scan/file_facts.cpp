#include "hashsieve/scan/file_facts.h"

#include "hashsieve/digest/file_digests.h"
#include "hashsieve/refset/section_digests.h"
#include "hashsieve/refset/similarity_index.h"

namespace hashsieve::scan {

Result<FileRecord> file_record_from_bytes(const std::string& path, std::uint32_t mode,
                                          std::span<const std::uint8_t> bytes) {
  auto d = digest::compute_digests(path, bytes, digest::DigestSelection{});
  if (!d.ok()) return std::move(d).error().with_context("hashing " + path);
  FileRecord r;
  r.path = path;
  r.kind = image::EntryKind::regular;
  r.size = bytes.size();
  r.mode = mode;
  r.crypto = d->crypto;
  r.sdbf = std::move(d->sdbf);
  r.tlsh = d->tlsh;
  r.ssdeep = std::move(d->ssdeep);
  r.content_keys = refset::sample_content_keys(bytes);
  r.similarity_computed = true;
  // As the layer hasher: a damaged section table means no .rodata digests.
  auto rodata = refset::rodata_digests(path, bytes);
  if (rodata.ok()) r.rodata = std::move(rodata).value();
  return r;
}

}  // namespace hashsieve::scan
