// What membership in a reference set says about a file.
#pragma once

#include <string_view>

#include "hashsieve/core/result.h"

namespace hashsieve::refset {

enum class ReferenceClass : unsigned char {
  known,       // known software (NSRL): sieved out of reports
  malicious,   // known-bad (ClamAV hash signatures, VirusShare, NSRL SpecialCode M)
  suspicious,  // not proven bad but worth a look (NSRL "Hacker Tool", steganography)
};

std::string_view to_string(ReferenceClass c);
Result<ReferenceClass> parse_reference_class(std::string_view text);

}  // namespace hashsieve::refset
