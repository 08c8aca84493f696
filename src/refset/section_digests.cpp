#include "hashsieve/refset/section_digests.h"

#include "hashsieve/digest/elf_sections.h"
#include "hashsieve/digest/file_digests.h"

namespace hashsieve::refset {

bool SectionDigests::operator==(const SectionDigests& o) const {
  if (size != o.size || tlsh.has_value() != o.tlsh.has_value() || ssdeep != o.ssdeep || sdbf.size() != o.sdbf.size()) {
    return false;
  }
  if (tlsh && tlsh->to_string() != o.tlsh->to_string()) return false;
  for (std::size_t i = 0; i < sdbf.size(); ++i) {
    if (digest::format_sdbf(sdbf[i]) != digest::format_sdbf(o.sdbf[i])) return false;
  }
  return true;
}

Result<std::optional<SectionDigests>> rodata_digests(const std::string& name, std::span<const std::uint8_t> bytes) {
  if (!digest::has_elf_magic(bytes)) return std::optional<SectionDigests>();
  static const std::vector<std::string> kNames = {kRodataSection};
  auto section = digest::elf_section_bytes(bytes, kNames);
  if (!section.ok()) return std::move(section).error().with_context(name + ": .rodata");
  if (section->empty()) return std::optional<SectionDigests>();
  digest::DigestSelection selection;
  selection.crypto = digest::CryptoSelection::none();
  auto d = digest::compute_digests(name, *section, selection);
  if (!d.ok()) return std::move(d).error().with_context(name + ": .rodata digests");
  SectionDigests out;
  out.size = section->size();
  out.sdbf = std::move(d->sdbf);
  out.tlsh = d->tlsh;
  out.ssdeep = std::move(d->ssdeep);
  return std::optional<SectionDigests>(std::move(out));
}

}  // namespace hashsieve::refset
