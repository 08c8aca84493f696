// libFuzzer target: a reference set's manifest.json. Parsing must fail with a
// parse_error or give a manifest that round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hashsieve/refset/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = hashsieve::refset::manifest_from_json(text);
  if (!parsed.ok()) {
    if (parsed.error().code() != hashsieve::ErrorCode::parse_error) std::abort();
    return 0;
  }
  auto again = hashsieve::refset::manifest_from_json(hashsieve::refset::manifest_to_json(*parsed));
  if (!again.ok() || again->fingerprint != parsed->fingerprint || again->version != parsed->version) std::abort();
  return 0;
}
