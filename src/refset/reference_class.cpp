#include "hashsieve/refset/reference_class.h"

#include <string>

namespace hashsieve::refset {

std::string_view to_string(ReferenceClass c) {
  switch (c) {
    case ReferenceClass::known: return "known";
    case ReferenceClass::malicious: return "malicious";
    case ReferenceClass::suspicious: return "suspicious";
  }
  return "known";
}

Result<ReferenceClass> parse_reference_class(std::string_view text) {
  if (text == "known") return ReferenceClass::known;
  if (text == "malicious") return ReferenceClass::malicious;
  if (text == "suspicious") return ReferenceClass::suspicious;
  return Error(ErrorCode::invalid_argument,
               "unknown class '" + std::string(text) + "' (expected known, malicious or suspicious)");
}

}  // namespace hashsieve::refset
