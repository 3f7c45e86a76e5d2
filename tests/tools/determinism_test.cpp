// Determinism: the same model, data and options give a byte-identical model, for every
// registered pass on its own and for the pipelines that calibrate with 1 and with 2 threads.
#include <catch2/catch.hpp>

#include <string>

#include "support/demo_model.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/common/file_util.h"
#include "whittle/passes/registry.h"

namespace whittle {
namespace {

using testing::runWhittle;
using testing::TempDir;

const std::string& kDemo = testing::kDemoModel;
const std::string& kCalib = testing::kDemoCalib;

std::string bytesOf(const std::string& path) {
  auto bytes = readFile(path);
  INFO(path << ": " << bytes.status().message());
  REQUIRE(bytes.isOk());
  return *bytes;
}

// Runs `whittle optimize demo -o OUT ARGS` and returns the written bytes.
std::string optimized(const TempDir& dir, const std::string& name, const std::string& args) {
  const std::string out = dir.file(name);
  auto r = runWhittle("optimize '" + kDemo + "' -o '" + out + "' " + args);
  INFO("optimize " << args << "\n" << r.out);
  REQUIRE(r.exitCode == 0);
  return bytesOf(out);
}

// The options that let a pass run on the demo model: calibration data where it needs it.
std::string argsFor(const passes::PassInfo& pass) {
  std::string args = "-O0 --passes '" + pass.name + "'";
  if (pass.name == "quantize-int8" || pass.name == "prune-wanda" || pass.name == "smooth-quant" ||
      pass.name.rfind("convert-", 0) == 0) {
    args += " --calib '" + kCalib + "'";
  }
  return args;
}

TEST_CASE("every pass gives a byte-identical model on a second run", "[tools][determinism]") {
  TempDir dir;
  int checked = 0;
  for (const passes::PassInfo& pass : passes::allPasses()) {
    INFO("pass " << pass.name);
    const std::string args = argsFor(pass);
    std::string first = optimized(dir, pass.name + ".a.onnx", args);
    std::string second = optimized(dir, pass.name + ".b.onnx", args);
    CHECK(first == second);
    ++checked;
  }
  CHECK(checked == static_cast<int>(passes::allPasses().size()));
}

TEST_CASE("calibrated pipelines give the same bytes on 1, 2 and auto calibration threads", "[tools][determinism]") {
  TempDir dir;
  const std::string calib = " --calib '" + kCalib + "'";
  for (const std::string& what : {std::string("--quantize int8"), std::string("--quantize int8 --calib-method entropy"),
                                  std::string("--quantize int8 --format qoperator"),
                                  std::string("--passes 'prune-wanda{sparsity=0.5}'"),
                                  std::string("--convert fp16 --tolerance 1e-3")}) {
    INFO(what);
    std::string one = optimized(dir, "t1.onnx", what + calib + " --calib-threads 1");
    std::string two = optimized(dir, "t2.onnx", what + calib + " --calib-threads 2");
    std::string autoThreads = optimized(dir, "t0.onnx", what + calib);
    CHECK(one == two);
    CHECK(one == autoThreads);
  }
}

}  // namespace
}  // namespace whittle
