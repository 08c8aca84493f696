// Result<T>: the one error vocabulary of hashsieve.
//
// Every fallible operation returns Result<T>: either a value or an Error that
// carries a code (what kind of failure, for exit codes and retry decisions) and
// a message with context frames added as the error travels up. Third-party
// exceptions are caught at the adapter that calls the library and turned into
// an Error there; nothing above an adapter throws.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hashsieve {

enum class ErrorCode {
  invalid_argument,  // the caller asked for something that cannot be done
  not_found,         // a file, object or key does not exist
  permission_denied,
  io_error,          // read/write failure of an existing resource
  parse_error,       // malformed input data (digest line, JSON, archive, ...)
  unsupported,       // well-formed but not something we handle
  limit_exceeded,    // a configured size/count/ratio limit was hit
  integrity_error,   // a digest or checksum did not verify
  unavailable,       // a server or resource is (maybe temporarily) unreachable
  internal,          // a bug: an invariant did not hold
};

std::string_view to_string(ErrorCode code);
// The code's identifier ("invalid_argument", "not_found", ...): what the API's
// error bodies and the job store's error_code column carry.
std::string_view code_name(ErrorCode code);

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Adds an outer context frame, e.g. the file being read. Frames print
  // outermost first: "reading digests.sdbf: line 3: bad base64".
  Error&& with_context(std::string frame) && {
    message_ = std::move(frame) + ": " + message_;
    return std::move(*this);
  }
  Error& with_context(std::string frame) & {
    message_ = std::move(frame) + ": " + message_;
    return *this;
  }

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}   // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<T>(state_); }
  const T& value() const& { assert(ok()); return std::get<T>(state_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<Error>(state_); }
  Error&& error() && { assert(!ok()); return std::get<Error>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { assert(failed_); return error_; }
  Error&& error() && { assert(failed_); return std::move(error_); }

 private:
  Error error_{ErrorCode::internal, ""};
  bool failed_ = false;
};

using Status = Result<void>;

// Partial success: a value plus the warnings met on the way (for example
// malformed rows skipped during an import). Warnings are first class, not logs.
struct Warning {
  std::string message;
};

template <typename T>
struct WithWarnings {
  T value;
  std::vector<Warning> warnings;
};

}  // namespace hashsieve
