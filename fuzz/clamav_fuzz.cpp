// libFuzzer target: the ClamAV .hdb/.hsb reader.
#include "source_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve::refset;
  fuzz::write_input(data, size);
  fuzz::read_and_check(SourceFormat::clamav);
  return 0;
}
