// ssdeep adapter over libfuzzy (see ssdeep.h).
#include "hashsieve/digest/ssdeep.h"

#include <fuzzy.h>

#include <string>

namespace hashsieve::digest {

void SsdeepHasher::StateDeleter::operator()(fuzzy_state* state) const { fuzzy_free(state); }

SsdeepHasher::SsdeepHasher() : state_(fuzzy_new()) {
  if (!state_) error_ = "fuzzy_new failed (out of memory)";
}

void SsdeepHasher::set_expected_length(std::uint64_t total_bytes) {
  if (!error_.empty()) return;
  if (fuzzy_set_total_input_length(state_.get(), total_bytes) != 0) {
    error_ = "input of " + std::to_string(total_bytes) + " bytes is beyond libfuzzy's limit";
  }
}

void SsdeepHasher::update(std::span<const std::uint8_t> data) {
  if (!error_.empty() || data.empty()) return;
  // After a failed fuzzy_update the state may only be freed, so stop feeding.
  if (fuzzy_update(state_.get(), data.data(), data.size()) != 0) {
    error_ = "fuzzy_update failed (input beyond libfuzzy's size limit?)";
  }
}

Result<std::string> SsdeepHasher::finish() const {
  if (!error_.empty()) return Error(ErrorCode::limit_exceeded, "ssdeep: " + error_);
  char buf[FUZZY_MAX_RESULT];
  if (fuzzy_digest(state_.get(), buf, 0) != 0) {
    // libfuzzy fails here when the announced length was not what was fed, or
    // the total is beyond its limit.
    return Error(ErrorCode::invalid_argument,
                 "ssdeep: fuzzy_digest failed (input length differs from the announced one, "
                 "or is beyond libfuzzy's limit)");
  }
  return std::string(buf);
}

Result<int> ssdeep_compare(std::string_view a, std::string_view b) {
  // fuzzy_compare wants NUL-terminated strings; an embedded NUL would
  // silently truncate, so treat it as malformed.
  if (a.find('\0') != std::string_view::npos || b.find('\0') != std::string_view::npos) {
    return Error(ErrorCode::parse_error, "ssdeep digest contains a NUL byte");
  }
  const std::string sa(a), sb(b);
  const int score = fuzzy_compare(sa.c_str(), sb.c_str());
  if (score < 0) {
    return Error(ErrorCode::parse_error, "malformed ssdeep digest (expected blocksize:hash:hash)");
  }
  return score;
}

}  // namespace hashsieve::digest
