// libFuzzer target: the clamd reply parsers (INSTREAM verdicts and VERSION).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hashsieve/scanners/clamd_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve::scanners;
  const std::string_view reply(reinterpret_cast<const char*>(data), size);
  auto scan = parse_clamd_scan_reply(reply);
  if (scan.ok()) {
    // Every reported name is a real token of the reply.
    for (const auto& name : *scan) {
      if (name.empty() || name.find_first_of(" \t\n") != std::string::npos) std::abort();
      if (reply.find(name) == std::string_view::npos) std::abort();
    }
  } else if (scan.error().message().empty() || scan.error().message().size() > 400) {
    std::abort();  // errors quote at most a bounded part of the reply
  }
  auto version = parse_clamd_version(reply);
  if (version.ok() && (version->engine.empty() || reply.find(version->engine) == std::string_view::npos)) {
    std::abort();
  }
  return 0;
}
