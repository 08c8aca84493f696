#include "hashsieve/scanners/clamd_reply.h"

#include <cstdio>

namespace hashsieve::scanners {
namespace {

constexpr std::size_t kQuoteLimit = 120;

// Quotes daemon text for an error message: printable ASCII as is, anything
// else as \xNN, cut at kQuoteLimit bytes.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kQuoteLimit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (text.size() > kQuoteLimit) out += "...";
  return out + "\"";
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Splits on NUL and '\n', dropping empty pieces (the terminator of the last line).
std::vector<std::string_view> lines_of(std::string_view reply) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= reply.size(); ++i) {
    if (i == reply.size() || reply[i] == '\0' || reply[i] == '\n') {
      if (i > start) lines.push_back(reply.substr(start, i - start));
      start = i + 1;
    }
  }
  return lines;
}

}  // namespace

Result<std::vector<std::string>> parse_clamd_scan_reply(std::string_view reply) {
  const auto lines = lines_of(reply);
  if (lines.empty()) return Error(ErrorCode::parse_error, "clamd sent an empty reply");
  std::vector<std::string> found;
  for (std::string_view line : lines) {
    if (ends_with(line, " ERROR")) {
      std::string_view what = line.substr(0, line.size() - 6);
      if (what.rfind("stream: ", 0) == 0) what.remove_prefix(8);
      const ErrorCode code = what.find("size limit exceeded") != std::string_view::npos
                                 ? ErrorCode::limit_exceeded
                                 : ErrorCode::io_error;
      return Error(code, "clamd reported an error: " + quote(what));
    }
    if (line.rfind("stream: ", 0) != 0) {
      return Error(ErrorCode::parse_error, "unexpected clamd reply " + quote(line));
    }
    const std::string_view rest = line.substr(8);
    // With AllMatchScan a FOUND line may come with an OK line; matches stand.
    if (rest == "OK") continue;
    if (ends_with(rest, " FOUND")) {
      const std::string_view name = rest.substr(0, rest.size() - 6);
      if (name.empty() || name.find_first_of(" \t") != std::string_view::npos) {
        return Error(ErrorCode::parse_error, "clamd reported a malformed signature name in " + quote(line));
      }
      found.emplace_back(name);
      continue;
    }
    return Error(ErrorCode::parse_error, "unexpected clamd reply " + quote(line));
  }
  return found;
}

Result<ClamdVersion> parse_clamd_version(std::string_view reply) {
  const auto lines = lines_of(reply);
  if (lines.size() != 1) {
    return Error(ErrorCode::parse_error, "unexpected clamd VERSION reply " + quote(reply));
  }
  std::string_view line = lines.front();
  constexpr std::string_view kPrefix = "ClamAV ";
  if (line.rfind(kPrefix, 0) != 0 || line.size() == kPrefix.size()) {
    return Error(ErrorCode::parse_error, "unexpected clamd VERSION reply " + quote(reply));
  }
  line.remove_prefix(kPrefix.size());
  ClamdVersion v;
  const std::size_t slash = line.find('/');
  v.engine = std::string(line.substr(0, slash));
  if (slash != std::string_view::npos) v.database = std::string(line.substr(slash + 1));
  if (v.engine.empty() || v.engine.find(' ') != std::string::npos) {
    return Error(ErrorCode::parse_error, "unexpected clamd VERSION reply " + quote(reply));
  }
  return v;
}

}  // namespace hashsieve::scanners
