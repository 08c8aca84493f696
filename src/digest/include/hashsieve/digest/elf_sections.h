// ELF section lookup: the byte ranges of named sections of an ELF file, read
// from its section header table and section name table (.shstrtab). Used for
// section digests: a .rodata digest recognises another build of a program
// whose code bytes differ (docs/detection.md, docs/adr/0012-section-digests.md).
//
// Supports ELF32 and ELF64, little and big endian. Every header field that
// points into the file is checked against the file's size (with overflow
// checks) before it is used, so malformed input yields a parse_error naming
// the problem and never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::digest {

// True when `bytes` starts with the ELF magic ("\x7f" "ELF").
bool has_elf_magic(std::span<const std::uint8_t> bytes);

struct ElfSectionRange {
  std::string name;
  std::uint64_t offset = 0;  // within the file
  std::uint64_t size = 0;    // bytes in the file (0 for SHT_NOBITS sections such as .bss)
};

// The sections of the file whose name is in `names`, in section table order
// (a name may match several sections). Files without a section table give an
// empty list. Errors: unsupported for non-ELF input or unknown class/byte
// order; parse_error for a malformed header or table.
Result<std::vector<ElfSectionRange>> find_elf_sections(std::span<const std::uint8_t> file,
                                                       std::span<const std::string> names);

// The bytes of the named sections concatenated in the order of `names`
// (absent sections add nothing).
Result<std::vector<std::uint8_t>> elf_section_bytes(std::span<const std::uint8_t> file,
                                                    std::span<const std::string> names);

}  // namespace hashsieve::digest
