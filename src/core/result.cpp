#include "hashsieve/core/result.h"

namespace hashsieve {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::permission_denied: return "permission denied";
    case ErrorCode::io_error: return "I/O error";
    case ErrorCode::parse_error: return "parse error";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::limit_exceeded: return "limit exceeded";
    case ErrorCode::integrity_error: return "integrity error";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::internal: return "internal error";
  }
  return "unknown error";
}

}  // namespace hashsieve
