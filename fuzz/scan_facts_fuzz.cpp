// libFuzzer target: decoding cached layer facts (what the store hands back to
// the scan pipeline). The input is split at '\n' into the text fields md5,
// sha1, sha256, crc32, tlsh, ssdeep, content_keys, then the rest is the sdbf text; the first
// byte picks the entry kind (bit 0x40: a .rodata size; bit 0x20: the same
// digest texts as .rodata digests). Decoding must fail with a parse_error or give a
// record that encodes back to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hashsieve/scan/facts.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  using hashsieve::store::FactKind;
  hashsieve::store::FileFacts f;
  f.path = "fuzz/file";
  f.kind = static_cast<FactKind>(data[0] % 7);
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string* fields[] = {&f.md5, &f.sha1, &f.sha256, &f.crc32, &f.tlsh, &f.ssdeep, &f.content_keys};
  std::size_t pos = 0;
  for (std::string* field : fields) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      *field = text.substr(pos);
      pos = text.size();
      break;
    }
    *field = text.substr(pos, nl - pos);
    pos = nl + 1;
  }
  f.sdbf = text.substr(pos);
  f.size = f.sdbf.size();
  f.similarity_computed = (data[0] & 0x80) != 0;
  if ((data[0] & 0x40) != 0) f.rodata_size = f.size / 2;
  if ((data[0] & 0x20) != 0) {
    f.rodata_sdbf = f.sdbf;
    f.rodata_tlsh = f.tlsh;
    f.rodata_ssdeep = f.ssdeep;
  }
  auto decoded = hashsieve::scan::decode_facts(f);
  if (!decoded.ok()) {
    if (decoded.error().code() != hashsieve::ErrorCode::parse_error) std::abort();
    return 0;
  }
  // Hex case and the optional "T1" are normalised, so compare a second round.
  const hashsieve::store::FileFacts once = hashsieve::scan::encode_facts(*decoded);
  auto again = hashsieve::scan::decode_facts(once);
  if (!again.ok() || !(hashsieve::scan::encode_facts(*again) == once)) std::abort();
  return 0;
}
