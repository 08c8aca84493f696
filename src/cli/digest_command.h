// `hashsieve digest`: sdhash 3.4's command line (hash, -g, -c), with output
// byte-identical to the reference and deterministic at any -p.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/sdbf_policy.h"

namespace hashsieve::cli {

struct DigestOptions {
  std::vector<std::string> inputs;           // FILES...
  std::vector<std::string> list_files;       // -f: files holding one path per line
  std::vector<std::string> compare_files;    // -c FILE [FILE2]
  bool recursive = false;                    // -r
  bool generate_compare = false;             // -g
  digest::SdbfPolicy policy;                 // -b, -z
  int threshold = 1;                         // -t
  unsigned threads = 1;                      // -p (default: all cores)
  char separator = '|';                      // --separator pipe|csv|tab
  std::optional<std::string> output_base;    // -o NAME -> NAME.sdbf / NAME.compare
  std::string stdin_name = "stdin";          // --hash-name
  bool verbose = false;                      // --verbose
  bool help = false;
};

Result<DigestOptions> parse_digest_args(const std::vector<std::string>& args);

// Formats one comparison line: "A<sep>B<sep>NNN\n" (score zero-padded to three
// digits, -1 printed as "-1"), as sdhash prints it.
std::string format_compare_line(const std::string& a, const std::string& b, int score, char separator);

}  // namespace hashsieve::cli
