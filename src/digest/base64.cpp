#include "base64.h"

#include <array>

namespace hashsieve::digest {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

void base64_append(std::span<const std::uint8_t> bytes, std::string& out) {
  const std::size_t n = bytes.size();
  const std::size_t start = out.size();
  out.resize(start + 4 * ((n + 2) / 3));
  char* p = out.data() + start;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    *p++ = kAlphabet[(v >> 18) & 63];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = kAlphabet[v & 63];
  }
  if (i < n) {
    std::uint32_t v = std::uint32_t{bytes[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{bytes[i + 1]} << 8;
    *p++ = kAlphabet[(v >> 18) & 63];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = (i + 1 < n) ? kAlphabet[(v >> 6) & 63] : '=';
    *p++ = '=';
  }
}

bool base64_decode_append(std::string_view text, std::vector<std::uint8_t>& out) {
  if (text.size() % 4 != 0) return false;
  out.reserve(out.size() + text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::int32_t v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=') {
        // padding is only allowed in the last quantum, as its last one or two characters
        if (!last || k < 2) return false;
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[k] = kDecode[static_cast<unsigned char>(c)];
      if (v[k] < 0) return false;
    }
    const std::uint32_t word = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                               (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out.push_back(static_cast<std::uint8_t>(word >> 16));
    if (pad < 2) out.push_back(static_cast<std::uint8_t>(word >> 8));
    if (pad < 1) out.push_back(static_cast<std::uint8_t>(word));
  }
  return true;
}

}  // namespace hashsieve::digest
