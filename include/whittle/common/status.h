#pragma once

#include <string>
#include <utility>
#include <variant>

namespace whittle {

/// What kind of failure a Status reports. The command line maps each kind to an exit code.
enum class StatusCode {
  kOk = 0,
  kInvalidInput,   ///< The user's model, data or options are malformed (exit code 2).
  kNotFound,       ///< A file, tensor, node or pass named by the user does not exist (exit code 2).
  kUnimplemented,  ///< Well-formed input that whittle does not support (exit code 2).
  kIoError,        ///< Reading or writing a file failed (exit code 2).
  kInternal,       ///< A broken invariant inside whittle (exit code 1).
};

/// The result of an operation that can fail on user input. A message names the thing and says
/// what was expected, e.g. "Conv 'conv1': input W must be a constant".
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// Returns a copy whose message is prefixed with `context: `.
  Status withContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status invalidInput(std::string message);
Status notFound(std::string message);
Status unimplemented(std::string message);
Status ioError(std::string message);
Status internalError(std::string message);

/// The exit code that the command line uses for a status: 0 ok, 2 bad input, 1 internal error.
int exitCodeFor(const Status& status);

/// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Expected(Status status) : state_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool isOk() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return isOk(); }

  const Status& status() const {
    static const Status kOkStatus;
    return isOk() ? kOkStatus : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

/// Aborts with a message: for broken internal invariants only, never for user input.
[[noreturn]] void checkFailed(const char* file, int line, const char* condition, const std::string& message);

}  // namespace whittle

#define WH_CONCAT_INNER_(a, b) a##b
#define WH_CONCAT_(a, b) WH_CONCAT_INNER_(a, b)

/// Returns the status from the enclosing function when `expr` fails.
#define WH_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::whittle::Status wh_status_ = (expr);         \
    if (!wh_status_.isOk()) return wh_status_;     \
  } while (0)

#define WH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.isOk()) return tmp.status();           \
  lhs = std::move(tmp).value()

/// `WH_ASSIGN_OR_RETURN(auto x, f())`: unwraps an Expected or returns its status.
#define WH_ASSIGN_OR_RETURN(lhs, expr) \
  WH_ASSIGN_OR_RETURN_IMPL_(WH_CONCAT_(wh_expected_, __LINE__), lhs, expr)

/// Checks an internal invariant; aborts with the message when it does not hold.
#define WH_CHECK(cond, ...)                                                       \
  do {                                                                            \
    if (!(cond)) ::whittle::checkFailed(__FILE__, __LINE__, #cond, std::string{__VA_ARGS__}); \
  } while (0)
