// libFuzzer target: the sha256sum/sha1sum/md5sum list reader (GNU, escaped
// and BSD tag forms), and the VirusShare reader on the same bytes.
#include "source_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hashsieve::refset;
  fuzz::write_input(data, size);
  fuzz::read_and_check(SourceFormat::hashlist);
  fuzz::read_and_check(SourceFormat::virusshare);
  return 0;
}
