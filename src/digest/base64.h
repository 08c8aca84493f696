// Standard Base64 (RFC 4648, '+' '/' and '=' padding), as the SDBF text form
// uses it. Internal to the digest module.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hashsieve::digest {

// Appends the Base64 encoding of `bytes` to `out`.
void base64_append(std::span<const std::uint8_t> bytes, std::string& out);

// Decodes `text` (length a multiple of 4, padding only at the end) into `out`
// (appending). Returns false on any invalid character, length or padding.
bool base64_decode_append(std::string_view text, std::vector<std::uint8_t>& out);

}  // namespace hashsieve::digest
