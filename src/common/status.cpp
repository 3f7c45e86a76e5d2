#include "whittle/common/status.h"

#include <cstdio>
#include <cstdlib>

namespace whittle {

Status Status::withContext(const std::string& context) const {
  if (isOk()) return *this;
  return {code_, context + ": " + message_};
}

Status invalidInput(std::string message) { return {StatusCode::kInvalidInput, std::move(message)}; }
Status notFound(std::string message) { return {StatusCode::kNotFound, std::move(message)}; }
Status unimplemented(std::string message) { return {StatusCode::kUnimplemented, std::move(message)}; }
Status ioError(std::string message) { return {StatusCode::kIoError, std::move(message)}; }
Status internalError(std::string message) { return {StatusCode::kInternal, std::move(message)}; }

int exitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInternal: return 1;
    case StatusCode::kInvalidInput:
    case StatusCode::kNotFound:
    case StatusCode::kUnimplemented:
    case StatusCode::kIoError: return 2;
  }
  return 1;
}

void checkFailed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "whittle: internal error at %s:%d: check '%s' failed%s%s\n", file, line, condition,
               message.empty() ? "" : ": ", message.c_str());
  std::abort();
}

}  // namespace whittle
