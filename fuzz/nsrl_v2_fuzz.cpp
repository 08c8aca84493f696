// libFuzzer target: the NSRL RDS 2.x reader (CSV, header-chosen layout). The
// same input also serves as the NSRLProd.txt, so the product parser is
// fuzzed too.
#include "source_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve::refset;
  fuzz::write_input(data, size);
  SourceOptions options;
  options.nsrl_v2_products_path = fuzz::scratch_file();
  fuzz::read_and_check(SourceFormat::nsrl_v2, options);
  return 0;
}
