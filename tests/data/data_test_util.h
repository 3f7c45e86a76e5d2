#pragma once
// Helpers of the data-set tests: fixtures made by tests/data/make_fixtures.py, commands run
// through the shell, and the process's resident memory.

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
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

/// Whether python3 can import every module in `modules` ("numpy", "numpy, PIL").
inline bool havePython(const std::string& modules) {
  return shell("python3 -c 'import " + modules + "'") == 0;
}

/// Writes the fixtures of make_fixtures.py into `folder`; false (with a warning) when
/// python3 with numpy is not available.
inline bool makeFixtures(const std::string& folder) {
  if (!havePython("numpy")) {
    WARN("skipped: python3 with numpy is needed to write the fixtures");
    return false;
  }
  std::string out;
  int rc = shell("python3 " + std::string(WHITTLE_SOURCE_DIR) + "/tests/data/make_fixtures.py " + folder, &out);
  INFO(out);
  REQUIRE(rc == 0);
  return true;
}

/// The resident set size of this process now, in bytes (from /proc/self/statm).
inline int64_t residentBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace whittle::testing
