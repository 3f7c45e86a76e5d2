#pragma once
// Helpers of the data-set tests: fixtures made by tests/data/make_fixtures.py, commands run
// through the shell, and the process's resident memory.

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "support/shell.h"

namespace whittle::testing {

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
