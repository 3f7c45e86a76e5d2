// --device on run, bench and compare (tools/common.cpp: deviceOption): choosing cuda prints the
// one-line "unverified" warning; without a usable device the command then fails with one line
// saying why. The binary is run as a user would.
#include <catch2/catch.hpp>

#include <algorithm>

#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/runtime/device.h"

namespace whittle {
namespace {

const std::string kDemo = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_cnn.onnx";
const std::string kDemoImages = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_data/test_images.npy";

/// Checks the output of a command run with --device cuda.
void checkCudaChoice(const testing::RunResult& r) {
  INFO(r.out);
  CHECK(r.out.find("whittle: warning: this build's CUDA path is unverified") != std::string::npos);
  const bool usable = runtime::backendFor(runtime::DeviceKind::kCuda).isOk();
  if (usable) {
    CHECK(r.exitCode == 0);
    return;
  }
  CHECK(r.exitCode == 2);
  const std::string error = runtime::builtWithCuda() ? "no CUDA device" : "not built into this runtime";
  CHECK(r.out.find(error) != std::string::npos);
  // The warning and the error: two lines, nothing else.
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
}

TEST_CASE("run, bench and compare take --device cuda and warn that the GPU path is unverified", "[tools][cuda]") {
  testing::TempDir dir;
  checkCudaChoice(testing::runWhittle("bench '" + kDemo + "' --device cuda --iterations 2 --warmup 0"));
  checkCudaChoice(testing::runWhittle("run '" + kDemo + "' --input '" + kDemoImages + "' -o '" + dir.path() +
                                      "/out' --device cuda"));
  checkCudaChoice(testing::runWhittle("compare '" + kDemo + "' '" + kDemo + "' --data '" + kDemoImages +
                                      "' --limit 4 --latency-runs 0 --device cuda --reference-device cpu"));
}

TEST_CASE("the cpu device is the default and says nothing more", "[tools]") {
  auto r = testing::runWhittle("bench '" + std::string(kDemo) + "' --device cpu --iterations 2 --warmup 0");
  INFO(r.out);
  CHECK(r.exitCode == 0);
  CHECK(r.out.find("warning") == std::string::npos);
  CHECK(r.out.find("runs        cpu,") != std::string::npos);
  auto bad = testing::runWhittle("bench '" + std::string(kDemo) + "' --device tpu");
  CHECK(bad.exitCode != 0);
  CHECK(bad.out.find("--device") != std::string::npos);
}

}  // namespace
}  // namespace whittle
