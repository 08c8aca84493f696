// ELF section lookup: synthetic ELF32/ELF64 files of both byte orders built
// here (so every header field can be damaged on purpose), plus real binaries
// of this machine checked against readelf's view of .rodata.
#include "hashsieve/digest/elf_sections.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"
#include "real_files.h"

namespace hashsieve::digest {
namespace {

using Bytes = std::vector<std::uint8_t>;

struct Layout {
  bool is64 = true;
  bool big = false;
};

void put(Bytes& b, std::size_t at, std::uint64_t v, std::size_t width, bool big) {
  if (b.size() < at + width) b.resize(at + width);
  for (std::size_t i = 0; i < width; ++i) {
    const std::size_t shift = 8 * (big ? width - 1 - i : i);
    b[at + i] = static_cast<std::uint8_t>(v >> shift);
  }
}

// Section data offsets in the synthetic file.
constexpr std::size_t kRodataAt = 0x100;
constexpr std::size_t kTextAt = 0x180;
constexpr std::size_t kStrtabAt = 0x200;
constexpr std::size_t kShoff = 0x240;

// A small ELF file: sections [null, .text, .rodata, .bss (NOBITS), .shstrtab].
Bytes make_elf(Layout l) {
  Bytes b(kShoff, 0);
  b[0] = 0x7f; b[1] = 'E'; b[2] = 'L'; b[3] = 'F';
  b[4] = l.is64 ? 2 : 1;
  b[5] = l.big ? 2 : 1;
  b[6] = 1;
  const std::size_t entsize = l.is64 ? 64 : 40;
  if (l.is64) {
    put(b, 0x28, kShoff, 8, l.big);
    put(b, 0x3A, entsize, 2, l.big);
    put(b, 0x3C, 5, 2, l.big);
    put(b, 0x3E, 4, 2, l.big);
  } else {
    put(b, 0x20, kShoff, 4, l.big);
    put(b, 0x2E, entsize, 2, l.big);
    put(b, 0x30, 5, 2, l.big);
    put(b, 0x32, 4, 2, l.big);
  }
  for (std::size_t i = 0; i < 64; ++i) b[kRodataAt + i] = static_cast<std::uint8_t>('r');
  for (std::size_t i = 0; i < 32; ++i) b[kTextAt + i] = static_cast<std::uint8_t>('t');
  const std::string names = std::string("\0.text\0.rodata\0.bss\0.shstrtab\0", 31);
  for (std::size_t i = 0; i < names.size(); ++i) b[kStrtabAt + i] = static_cast<std::uint8_t>(names[i]);
  struct Sec { std::uint32_t name, type; std::uint64_t off, size; };
  const Sec secs[] = {{0, 0, 0, 0}, {1, 1, kTextAt, 32}, {7, 1, kRodataAt, 64}, {15, 8, 0x1000, 0x400},
                      {20, 3, kStrtabAt, names.size()}};
  b.resize(kShoff + 5 * entsize, 0);
  for (std::size_t i = 0; i < 5; ++i) {
    const std::size_t at = kShoff + i * entsize;
    put(b, at, secs[i].name, 4, l.big);
    put(b, at + 4, secs[i].type, 4, l.big);
    if (l.is64) {
      put(b, at + 0x18, secs[i].off, 8, l.big);
      put(b, at + 0x20, secs[i].size, 8, l.big);
    } else {
      put(b, at + 0x10, secs[i].off, 4, l.big);
      put(b, at + 0x14, secs[i].size, 4, l.big);
    }
  }
  return b;
}

// Offset of a section header field for section `index`.
std::size_t sh_field(Layout l, std::size_t index, std::size_t off64, std::size_t off32) {
  return kShoff + index * (l.is64 ? 64 : 40) + (l.is64 ? off64 : off32);
}

const std::vector<std::string> kRodata = {".rodata"};

TEST(ElfSections, FindsRodataInEveryClassAndByteOrder) {
  for (const Layout l : {Layout{true, false}, Layout{true, true}, Layout{false, false}, Layout{false, true}}) {
    SCOPED_TRACE(std::string(l.is64 ? "ELF64" : "ELF32") + (l.big ? " big" : " little"));
    const Bytes elf = make_elf(l);
    auto found = find_elf_sections(elf, kRodata);
    ASSERT_TRUE(found.ok()) << found.error().message();
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ((*found)[0].offset, kRodataAt);
    EXPECT_EQ((*found)[0].size, 64u);
    auto bytes = elf_section_bytes(elf, std::vector<std::string>{".rodata", ".text", ".bss", ".missing"});
    ASSERT_TRUE(bytes.ok()) << bytes.error().message();
    EXPECT_EQ(std::string(bytes->begin(), bytes->end()), std::string(64, 'r') + std::string(32, 't'));
  }
}

TEST(ElfSections, MalformedInputIsAClearError) {
  struct Case {
    std::string name;
    Layout layout;
    std::function<void(Bytes&, Layout)> damage;
    ErrorCode want;
    std::string want_text;
  };
  const Layout le64{true, false};
  const Layout be32{false, true};
  const std::vector<Case> cases = {
      {"not elf", le64, [](Bytes& b, Layout) { b[1] = 'X'; }, ErrorCode::unsupported, "not an ELF"},
      {"unknown class", le64, [](Bytes& b, Layout) { b[4] = 3; }, ErrorCode::unsupported, "class"},
      {"unknown byte order", le64, [](Bytes& b, Layout) { b[5] = 0; }, ErrorCode::unsupported, "byte order"},
      {"truncated ident", le64, [](Bytes& b, Layout) { b.resize(10); }, ErrorCode::parse_error, "truncated"},
      {"truncated header", le64, [](Bytes& b, Layout) { b.resize(0x30); }, ErrorCode::parse_error, "truncated"},
      {"truncated header 32", be32, [](Bytes& b, Layout) { b.resize(0x2F); }, ErrorCode::parse_error, "truncated"},
      {"bad entry size", le64, [](Bytes& b, Layout l) { put(b, 0x3A, 40, 2, l.big); }, ErrorCode::parse_error,
       "section header size"},
      {"bad entry size 32", be32, [](Bytes& b, Layout l) { put(b, 0x2E, 64, 2, l.big); }, ErrorCode::parse_error,
       "section header size"},
      {"shstrndx beyond count", le64, [](Bytes& b, Layout l) { put(b, 0x3E, 5, 2, l.big); },
       ErrorCode::parse_error, "name table index"},
      {"shstrndx xindex", be32, [](Bytes& b, Layout l) { put(b, 0x32, 0xffff, 2, l.big); },
       ErrorCode::parse_error, "extended"},
      {"extended numbering", le64, [](Bytes& b, Layout l) { put(b, 0x3C, 0, 2, l.big); }, ErrorCode::parse_error,
       "extended"},
      {"table offset past end", le64, [](Bytes& b, Layout l) { put(b, 0x28, 1u << 20, 8, l.big); },
       ErrorCode::parse_error, "runs past the end"},
      {"table offset overflows", le64, [](Bytes& b, Layout l) { put(b, 0x28, ~std::uint64_t{0} - 8, 8, l.big); },
       ErrorCode::parse_error, "runs past the end"},
      {"huge count", be32, [](Bytes& b, Layout l) { put(b, 0x30, 0xfff0, 2, l.big); }, ErrorCode::parse_error,
       "runs past the end"},
      {"truncated table", be32, [](Bytes& b, Layout) { b.resize(b.size() - 1); }, ErrorCode::parse_error,
       "runs past the end"},
      {"name table past end", le64,
       [](Bytes& b, Layout l) { put(b, sh_field(l, 4, 0x18, 0x10), 1u << 20, 8, l.big); }, ErrorCode::parse_error,
       "name table outside"},
      {"name table size overflows", be32,
       [](Bytes& b, Layout l) { put(b, sh_field(l, 4, 0x20, 0x14), 0xffffffffu, 4, l.big); },
       ErrorCode::parse_error, "name table outside"},
      {"name table nobits", le64, [](Bytes& b, Layout l) { put(b, sh_field(l, 4, 4, 4), 8, 4, l.big); },
       ErrorCode::parse_error, "name table outside"},
      {"rodata past end", le64,
       [](Bytes& b, Layout l) { put(b, sh_field(l, 2, 0x20, 0x14), 1u << 20, 8, l.big); },
       ErrorCode::parse_error, "section .rodata"},
      {"rodata offset+size overflows", le64,
       [](Bytes& b, Layout l) {
         put(b, sh_field(l, 2, 0x18, 0x10), ~std::uint64_t{0} - 4, 8, l.big);
         put(b, sh_field(l, 2, 0x20, 0x14), 16, 8, l.big);
       },
       ErrorCode::parse_error, "section .rodata"},
      {"rodata past end 32", be32,
       [](Bytes& b, Layout l) { put(b, sh_field(l, 2, 0x18, 0x10), 0xfffffff0u, 4, l.big); },
       ErrorCode::parse_error, "section .rodata"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes elf = make_elf(c.layout);
    c.damage(elf, c.layout);
    auto found = find_elf_sections(elf, kRodata);
    ASSERT_FALSE(found.ok());
    EXPECT_EQ(found.error().code(), c.want);
    EXPECT_NE(found.error().message().find(c.want_text), std::string::npos) << found.error().message();
    EXPECT_FALSE(elf_section_bytes(elf, kRodata).ok());
  }
}

TEST(ElfSections, HarmlessOddities) {
  struct Case {
    std::string name;
    std::function<void(Bytes&)> change;
    std::size_t want_sections;
  };
  const Layout l{true, false};
  const std::vector<Case> cases = {
      {"no section table", [&](Bytes& b) { put(b, 0x28, 0, 8, l.big); put(b, 0x3C, 0, 2, l.big); }, 0},
      {"name offset beyond name table", [&](Bytes& b) { put(b, sh_field(l, 2, 0, 0), 1000, 4, l.big); }, 0},
      {"name without terminator at table end",
       [&](Bytes& b) { put(b, sh_field(l, 4, 0x20, 0x14), 12, 8, l.big); }, 0},
      {"nobits rodata has no bytes", [&](Bytes& b) { put(b, sh_field(l, 2, 4, 4), 8, 4, l.big); }, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes elf = make_elf(l);
    c.change(elf);
    auto found = find_elf_sections(elf, kRodata);
    ASSERT_TRUE(found.ok()) << found.error().message();
    EXPECT_EQ(found->size(), c.want_sections);
    for (const auto& s : *found) EXPECT_EQ(s.size, 0u);
  }
}

// Real binaries: our .rodata range equals readelf's.
TEST(ElfSections, RealBinariesMatchReadelf) {
  if (real_files::run("command -v readelf").empty()) GTEST_SKIP() << "readelf (binutils) not installed";
  int checked = 0;
  for (const char* path : {"/usr/bin/ls", "/usr/bin/cat", "/usr/bin/env"}) {
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(path);
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file.ok());
    auto found = find_elf_sections(file->bytes(), kRodata);
    ASSERT_TRUE(found.ok()) << found.error().message();
    ASSERT_EQ(found->size(), 1u);
    // readelf -W -S: "[NN] .rodata PROGBITS addr off size ..."
    const std::string line =
        real_files::run(std::string("readelf -W -S ") + path + " | awk '$2==\".rodata\"{print $5, $6}'");
    char want[64];
    std::snprintf(want, sizeof want, "%06llx %06llx\n", static_cast<unsigned long long>((*found)[0].offset),
                  static_cast<unsigned long long>((*found)[0].size));
    EXPECT_EQ(line, want);
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "none of the sample binaries exist";
}

}  // namespace
}  // namespace hashsieve::digest
