#pragma once
// Helpers of the data-set tests: fixtures made by tests/data/make_fixtures.py, commands run
// through the shell, and the process's resident memory.

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "support/python.h"
#include "support/shell.h"

namespace whittle::testing {

/// Writes the fixtures of make_fixtures.py into `folder`; false (with a warning, or a failure
/// under CI=true) when the test Python cannot import numpy.
inline bool makeFixtures(const std::string& folder) {
  if (!requirePython("numpy", "to write the data-set fixtures (tests/data/make_fixtures.py)")) return false;
  std::string out;
  int rc = shell(python() + " " + shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/data/make_fixtures.py") + " " +
                     shellQuote(folder),
                 &out);
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
