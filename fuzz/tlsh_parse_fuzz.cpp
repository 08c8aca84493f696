// libFuzzer target: TlshDigest::parse on arbitrary text, and the distance of
// two parsed digests. Parsing must either fail cleanly or round-trip; the
// distance must be symmetric, zero on itself and within its possible range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hashsieve/digest/tlsh.h"

using hashsieve::digest::TlshDigest;
using hashsieve::digest::tlsh_distance;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The input is either one digest text, or two separated by the first '|'.
  const auto bar = text.find('|');
  const auto a = TlshDigest::parse(text.substr(0, bar));
  if (a.ok()) {
    const auto again = TlshDigest::parse(a->to_string());
    check(again.ok() && *again == *a);
    check(tlsh_distance(*a, *a) == 0);
  }
  if (bar == std::string_view::npos) return 0;
  const auto b = TlshDigest::parse(text.substr(bar + 1));
  if (a.ok() && b.ok()) {
    for (bool len : {true, false}) {
      const int d = tlsh_distance(*a, *b, len);
      check(d == tlsh_distance(*b, *a, len));
      // Upper bound: L 128*12, two ratios 7*12 each, checksum 1, body 32*24.
      check(d >= 0 && d <= 128 * 12 + 2 * 7 * 12 + 1 + 32 * 24);
    }
  }
  return 0;
}
