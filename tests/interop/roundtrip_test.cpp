// Interop: every shared model, loaded and saved by whittle with no passes, runs in ONNX Runtime
// with bit-identical outputs, passes the Python ONNX checker, and keeps about its size.
// The comparison itself is tests/interop/roundtrip.py (onnxruntime from PyPI).
#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"

using namespace whittle;
using testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int kSkipExitCode = 77;  // roundtrip.py: numpy, onnx or onnxruntime missing

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs `command` with stdout and stderr into `logPath`; returns the exit code (-1 if none).
int runLogged(const std::string& command, const std::string& logPath) {
  int status = std::system((command + " >" + quote(logPath) + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("shared models run bit-identically in ONNX Runtime after load and save", "[interop]") {
  auto folder = testing::sharedPath("models");
  if (!folder) return;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/interop/roundtrip.py";
  TempDir dir;

  // Without the test Python and onnxruntime this test cannot run: a skip on a developer's
  // machine, a failure in CI.
  if (!testing::requirePython("numpy, onnx, onnxruntime",
                              "for the ONNX Runtime comparison (tests/interop/roundtrip.py)")) {
    return;
  }

  std::vector<fs::path> models;
  for (const auto& entry : fs::directory_iterator(*folder)) {
    if (entry.path().extension() == ".onnx") models.push_back(entry.path());
  }
  std::sort(models.begin(), models.end());
  REQUIRE_FALSE(models.empty());

  std::string pairs;
  size_t count = 0;
  auto addPair = [&](const std::string& original, const std::string& saved) {
    pairs += " " + quote(original) + " " + quote(saved);
    ++count;
  };
  for (const fs::path& model : models) {
    INFO(model.filename().string());
    auto loaded = onnx_io::load(model.string());
    INFO(loaded.status().message());
    REQUIRE(loaded.isOk());
    REQUIRE(ir::verify(*loaded->graph).isOk());
    std::string saved = dir.file(model.filename().string());
    Status s = onnx_io::save(loaded.value(), saved);
    INFO(s.message());
    REQUIRE(s.isOk());
    addPair(model.string(), saved);
  }
  // ONNX Runtime reads whittle's external data too. (With the default threshold: the checker's
  // shape inference cannot read a Reshape's shape tensor from external data.)
  fs::create_directory(dir.file("external"));
  for (const char* name : {"mnist-8.onnx", "squeezenet1.1-fp16.onnx"}) {
    fs::path model = fs::path(*folder) / name;
    if (!fs::exists(model)) continue;
    auto loaded = onnx_io::load(model.string());
    REQUIRE(loaded.isOk());
    onnx_io::SaveOptions options;
    options.externalData = true;
    std::string saved = dir.file(std::string("external/") + name);
    REQUIRE(onnx_io::save(loaded.value(), saved, options).isOk());
    REQUIRE(fs::exists(saved + ".data"));
    addPair(model.string(), saved);
  }

  std::string log = dir.file("roundtrip.log");
  int code = runLogged(testing::python() + " " + quote(script) + pairs, log);
  std::string output = testing::readBytes(log);
  INFO("roundtrip.py output:\n" << output);
  if (code == kSkipExitCode) {
    if (testing::inCi())
      FAIL("roundtrip.py cannot import its modules under WHITTLE_PYTHON=" << WHITTLE_PYTHON << ": " << output);
    WARN("skipped: roundtrip.py cannot import its modules: " << output);
    return;
  }
  CHECK(code == 0);
  std::istringstream lines(output);
  size_t passed = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("OK   ", 0) == 0) ++passed;
  }
  CHECK(passed == count);
}
