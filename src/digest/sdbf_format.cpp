// Text form of an SDBF digest (spec section 7), as sdhash 3.4 prints it.
#include <cstdio>

#include "base64.h"
#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {

std::string format_sdbf(const Sdbf& digest) {
  const bool stream = digest.kind() == SdbfKind::stream;
  const std::size_t n = digest.filter_count();
  std::string out;
  // Base64 of a 256-byte filter is 344 characters; the block form adds
  // ":cc:" per block.
  out.reserve(128 + digest.name().size() + n * (stream ? 342 : 348));
  out += stream ? "sdbf" : "sdbf-dd";
  out += ":03:";
  out += std::to_string(digest.name().size());
  out += ':';
  out += digest.name();
  out += ':';
  out += std::to_string(digest.input_size());
  out += ":sha1:256:5:7ff:";
  out += std::to_string(digest.max_elements());
  out += ':';
  out += std::to_string(n);
  out += ':';
  if (stream) {
    out += std::to_string(digest.last_count());
    out += ':';
    const auto& words = digest.all_filter_words();
    base64_append({reinterpret_cast<const std::uint8_t*>(words.data()), words.size() * 8}, out);
  } else {
    out += std::to_string(digest.block_size());
    for (std::size_t i = 0; i < n; ++i) {
      char hex[16];
      std::snprintf(hex, sizeof hex, ":%02x:", digest.element_count(i));
      out += hex;
      base64_append(digest.filter_bytes(i), out);
    }
  }
  out += '\n';
  return out;
}

}  // namespace hashsieve::digest
