#pragma once
// Commands run through the shell from tests: python reference scripts and the built `whittle`
// binary (its path is the compile definition WHITTLE_BINARY).

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace whittle::testing {

/// Runs a shell command; returns its exit status and puts stdout+stderr in `output`.
inline int shell(const std::string& command, std::string* output = nullptr) {
  std::string text;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  int status = ::pclose(pipe);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// What a command printed and how it exited.
struct RunResult {
  int exitCode = -1;
  std::string out;
};

/// Runs `whittle ARGS`; `stderrToo` keeps stderr in the output, else it is dropped.
inline RunResult runWhittle(const std::string& args, bool stderrToo = true) {
  const std::string command = std::string("'") + WHITTLE_BINARY + "' " + args;
  RunResult r;
  r.exitCode = shell(stderrToo ? command : "(" + command + " 2>/dev/null)", &r.out);
  return r;
}

}  // namespace whittle::testing
