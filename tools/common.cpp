#include <cstdio>

#include "commands.h"

namespace whittle::tools {
namespace {
int gExitCode = 0;
}  // namespace

int reportError(const Status& status) {
  std::fprintf(stderr, "whittle: error: %s\n", status.message().c_str());
  return exitCodeFor(status);
}

void setExitCode(int code) { gExitCode = code; }
int exitCode() { return gExitCode; }

}  // namespace whittle::tools
