#pragma once
// The Python that tests shell out to (ONNX Runtime references, fixtures, checks): only the
// project virtualenv's interpreter, whose path CMake passes as the compile definition
// WHITTLE_PYTHON. Never the machine's own python3: a module missing from requirements.txt must
// show up here, not be hidden by whatever the machine happens to have installed.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "support/shell.h"

namespace whittle::testing {

/// The string `s` quoted for the shell: in single quotes, each inner quote written as '\''.
inline std::string shellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// The test interpreter (WHITTLE_PYTHON) quoted for the shell, to start a command line with:
///   shell(python() + " " + shellQuote(script) + " ...")
inline std::string python() {
  return shellQuote(WHITTLE_PYTHON);
}

/// Whether the environment has CI=true, where a missing prerequisite fails a test instead of
/// skipping it.
inline bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

namespace detail {

/// The outcome of `import <modules>` in the test interpreter: whether it worked, and if not the
/// last line of what it printed (e.g. "ModuleNotFoundError: No module named 'PIL'").
struct ImportProbe {
  bool ok = false;
  std::string error;
};

/// Runs the import once per `modules` string and remembers the outcome for the whole test run.
inline const ImportProbe& probeImport(const std::string& modules) {
  static std::map<std::string, ImportProbe> probes;
  auto found = probes.find(modules);
  if (found != probes.end()) return found->second;
  ImportProbe probe;
  std::string output;
  probe.ok = shell(python() + " -c " + shellQuote("import " + modules), &output) == 0;
  if (!probe.ok) {
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    size_t lineStart = output.rfind('\n');
    probe.error = lineStart == std::string::npos ? output : output.substr(lineStart + 1);
  }
  return probes.emplace(modules, probe).first->second;
}

}  // namespace detail

/// Whether the test interpreter can import every module in `modules`, written as after `import`
/// ("numpy", "numpy, onnx, onnxruntime", "PIL"). Each list is tried once per test run.
inline bool pythonHas(const std::string& modules) {
  return detail::probeImport(modules).ok;
}

/// Whether the test interpreter can import `modules`, which a test needs `forWhat` (a phrase:
/// "for the ONNX Runtime reference"). When it cannot, under CI=true the test FAILs (stopping
/// it); elsewhere it WARNs "skipped: ..." and this returns false, and the caller skips the
/// part that needs Python. Usage:
///   if (!testing::requirePython("numpy, onnxruntime", "for the ONNX Runtime reference")) return;
inline bool requirePython(const std::string& modules, const std::string& forWhat) {
  const detail::ImportProbe& probe = detail::probeImport(modules);
  if (probe.ok) return true;
  const std::string why = "the test Python WHITTLE_PYTHON=" + std::string(WHITTLE_PYTHON) + " cannot import " +
                          modules + ", needed " + forWhat + " (" + (probe.error.empty() ? "no output" : probe.error) +
                          "); run `bash scripts/setup.sh` to create the virtualenv";
  if (inCi()) FAIL(why << " (CI=true requires it)");
  WARN("skipped: " << why);
  return false;
}

}  // namespace whittle::testing
