// Parsers for clamd's replies (the "z" commands: every reply line ends in a
// NUL byte; "n" commands end lines in '\n', which is accepted too).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::scanners {

// The names of the signatures an INSTREAM reply reports: empty for
// "stream: OK", one per "stream: <name> FOUND" line. "... ERROR" lines are
// errors: limit_exceeded for clamd's "INSTREAM size limit exceeded", io_error
// for anything else clamd reports. An empty or unrecognised reply is a
// parse_error quoting (and escaping) the offending text.
Result<std::vector<std::string>> parse_clamd_scan_reply(std::string_view reply);

struct ClamdVersion {
  std::string engine;    // "1.4.6"
  std::string database;  // "27000/Sun Nov 22 09:21:32 2026", or "" when clamd has no official database
};

// Parses a VERSION reply: "ClamAV <engine>[/<db version>/<db date>]".
Result<ClamdVersion> parse_clamd_version(std::string_view reply);

}  // namespace hashsieve::scanners
