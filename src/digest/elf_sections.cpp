#include "hashsieve/digest/elf_sections.h"

#include <algorithm>
#include <limits>

namespace hashsieve::digest {
namespace {

// Reads an integer of the file's byte order; false when it lies past the end.
template <typename T>
bool read_int(std::span<const std::uint8_t> bytes, bool big_endian, std::uint64_t offset, T* out) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return false;
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    const std::size_t shift = 8 * (big_endian ? sizeof(T) - 1 - i : i);
    v |= static_cast<T>(static_cast<T>(bytes[offset + i]) << shift);
  }
  *out = v;
  return true;
}

struct SectionHeader {
  std::uint32_t name = 0;
  std::uint32_t type = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

constexpr std::uint32_t kShtNobits = 8;
constexpr std::uint16_t kShnXindex = 0xffff;

Error parse_error(const std::string& what) { return Error(ErrorCode::parse_error, "ELF: " + what); }

bool in_file(const SectionHeader& h, std::uint64_t file_size) {
  return h.type == kShtNobits || (h.offset <= file_size && file_size - h.offset >= h.size);
}

}  // namespace

bool has_elf_magic(std::span<const std::uint8_t> f) {
  return f.size() >= 4 && f[0] == 0x7f && f[1] == 'E' && f[2] == 'L' && f[3] == 'F';
}

Result<std::vector<ElfSectionRange>> find_elf_sections(std::span<const std::uint8_t> f,
                                                       std::span<const std::string> names) {
  if (!has_elf_magic(f)) return Error(ErrorCode::unsupported, "not an ELF file");
  if (f.size() < 16) return parse_error("truncated identification header");
  if ((f[4] != 1 && f[4] != 2) || (f[5] != 1 && f[5] != 2)) {
    return Error(ErrorCode::unsupported, "ELF: unknown class or byte order");
  }
  const bool is64 = f[4] == 2;
  const bool big = f[5] == 2;
  auto field = [&](std::uint64_t offset, auto* out) { return read_int(f, big, offset, out); };

  std::uint64_t shoff = 0;
  std::uint16_t shentsize = 0, shnum = 0, shstrndx = 0;
  bool ok = true;
  if (is64) {
    ok = field(0x28, &shoff) && field(0x3A, &shentsize) && field(0x3C, &shnum) && field(0x3E, &shstrndx);
  } else {
    std::uint32_t off32 = 0;
    ok = field(0x20, &off32) && field(0x2E, &shentsize) && field(0x30, &shnum) && field(0x32, &shstrndx);
    shoff = off32;
  }
  if (!ok) return parse_error("truncated file header");
  if (shnum == 0) {
    // e_shnum 0 with a table offset means extended numbering (count in
    // section 0): more than 65279 sections, which no program we digest has.
    if (shoff != 0) return parse_error("extended section numbering is not supported");
    return std::vector<ElfSectionRange>{};  // no section table: nothing to find
  }
  const std::uint64_t entsize = is64 ? 64 : 40;
  if (shentsize != entsize) {
    return parse_error("section header size " + std::to_string(shentsize) + ", want " + std::to_string(entsize));
  }
  if (shstrndx == kShnXindex) return parse_error("extended section name index is not supported");
  if (shstrndx >= shnum) {
    return parse_error("section name table index " + std::to_string(shstrndx) + " >= section count " +
                       std::to_string(shnum));
  }
  // shnum <= 65535 and entsize <= 64, so the table size cannot overflow.
  const std::uint64_t table_size = entsize * shnum;
  if (shoff > f.size() || f.size() - shoff < table_size) {
    return parse_error("section header table (offset " + std::to_string(shoff) + ", " + std::to_string(shnum) +
                       " entries) runs past the end of the file");
  }
  std::vector<SectionHeader> headers(shnum);
  for (std::size_t i = 0; i < shnum; ++i) {
    const std::uint64_t at = shoff + i * entsize;
    SectionHeader& h = headers[i];
    if (is64) {
      ok = field(at, &h.name) && field(at + 4, &h.type) && field(at + 0x18, &h.offset) && field(at + 0x20, &h.size);
    } else {
      std::uint32_t off32 = 0, size32 = 0;
      ok = field(at, &h.name) && field(at + 4, &h.type) && field(at + 0x10, &off32) && field(at + 0x14, &size32);
      h.offset = off32;
      h.size = size32;
    }
    if (!ok) return parse_error("section header table runs past the end of the file");  // unreachable by the check above
  }
  const SectionHeader& strtab = headers[shstrndx];
  if (strtab.type == kShtNobits || !in_file(strtab, f.size())) {
    return parse_error("section name table outside the file");
  }
  auto name_of = [&](const SectionHeader& h) -> std::string_view {
    if (h.name >= strtab.size) return {};
    const auto* base = reinterpret_cast<const char*>(f.data() + strtab.offset);
    const std::uint64_t max = strtab.size - h.name;
    std::uint64_t n = 0;
    while (n < max && base[h.name + n] != '\0') ++n;
    return {base + h.name, static_cast<std::size_t>(n)};
  };
  std::vector<ElfSectionRange> out;
  for (const SectionHeader& h : headers) {
    const std::string_view name = name_of(h);
    if (name.empty() || std::find(names.begin(), names.end(), name) == names.end()) continue;
    if (!in_file(h, f.size())) {
      return parse_error("section " + std::string(name) + " (offset " + std::to_string(h.offset) + ", size " +
                         std::to_string(h.size) + ") outside the file");
    }
    out.push_back(ElfSectionRange{std::string(name), h.type == kShtNobits ? 0 : h.offset,
                                  h.type == kShtNobits ? 0 : h.size});
  }
  return out;
}

Result<std::vector<std::uint8_t>> elf_section_bytes(std::span<const std::uint8_t> f,
                                                    std::span<const std::string> names) {
  auto found = find_elf_sections(f, names);
  if (!found) return std::move(found).error();
  std::vector<std::uint8_t> out;
  for (const std::string& want : names) {
    for (const ElfSectionRange& s : *found) {
      if (s.name != want) continue;
      const auto first = f.begin() + static_cast<std::ptrdiff_t>(s.offset);
      out.insert(out.end(), first, first + static_cast<std::ptrdiff_t>(s.size));
    }
  }
  return out;
}

}  // namespace hashsieve::digest
