#pragma once
// Where the tests find the source tree, the whittle binary and the test interpreter. Every test
// file sees this header (the build passes -include support/test_paths.h) and reads the three as
// WHITTLE_SOURCE_DIR, WHITTLE_BINARY and WHITTLE_PYTHON. The paths themselves are compiled into
// one generated file (build/generated/test_paths.cpp), not into every test object, so that the
// objects of two checkouts are the same and a compiler cache serves both.

namespace whittle::testing {
const char* sourceDirPath();
const char* whittleBinaryPath();
const char* testPythonPath();
}  // namespace whittle::testing

#define WHITTLE_SOURCE_DIR (::whittle::testing::sourceDirPath())
#define WHITTLE_BINARY (::whittle::testing::whittleBinaryPath())
#define WHITTLE_PYTHON (::whittle::testing::testPythonPath())
