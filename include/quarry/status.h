// Status and Result<T>: how every public Quarry call reports failure. No exception crosses the API.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace quarry {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input: a malformed line, a bad option, a wrong shape
  kNotFound,           // a document, file or tensor that does not exist
  kCorruption,         // stored data that fails its checks
  kIOError,            // the operating system or RocksDB failed to read or write
  kAlreadyExists,      // creating something that is there
  kFailedPrecondition,  // the call is not valid in the current state (e.g. a read-only collection)
  kInternal             // a broken dependency or environment (not bad input)
};

// A cheap value: OK carries no allocation. The message names the file, line, field or tensor at fault.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>", or "OK".
  std::string ToString() const;
  // Prefixes the message with a stage or location ("dense index: ...").
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like absl::StatusOr
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace quarry

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define QUARRY_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::quarry::Status _quarry_st = (expr);       \
    if (!_quarry_st.ok()) return _quarry_st;    \
  } while (0)

#define QUARRY_CONCAT_INNER(a, b) a##b
#define QUARRY_CONCAT(a, b) QUARRY_CONCAT_INNER(a, b)
// `QUARRY_ASSIGN_OR_RETURN(auto x, F());` binds the value of a Result or returns its Status.
#define QUARRY_ASSIGN_OR_RETURN(lhs, expr)                              \
  auto QUARRY_CONCAT(_quarry_r, __LINE__) = (expr);                     \
  if (!QUARRY_CONCAT(_quarry_r, __LINE__).ok())                         \
    return QUARRY_CONCAT(_quarry_r, __LINE__).status();                 \
  lhs = std::move(QUARRY_CONCAT(_quarry_r, __LINE__)).value()
