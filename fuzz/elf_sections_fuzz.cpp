// libFuzzer target: find_elf_sections / elf_section_bytes on arbitrary bytes.
// They must fail cleanly or return ranges inside the input whose
// concatenation is exactly what elf_section_bytes returns.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/digest/elf_sections.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const std::vector<std::string> names = {".rodata", ".text", ".shstrtab"};
  const auto found = hashsieve::digest::find_elf_sections(bytes, names);
  const auto concatenated = hashsieve::digest::elf_section_bytes(bytes, names);
  check(found.ok() == concatenated.ok());
  if (!found.ok()) return 0;
  std::uint64_t total = 0;
  for (const auto& s : *found) {
    check(s.offset <= size && size - s.offset >= s.size);
    total += s.size;
  }
  check(concatenated->size() == total);
  return 0;
}
