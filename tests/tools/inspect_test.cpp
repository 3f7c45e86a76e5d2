// Runs the built `whittle inspect` binary and checks what it prints and its exit code.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"

namespace whittle {
namespace {

using testing::RunResult;
using testing::runWhittle;

TEST_CASE("whittle inspect --json on squeezenet1.1", "[inspect]") {
  auto path = testing::sharedPath("models/squeezenet1.1.onnx");
  if (!path) return;
  RunResult r = runWhittle("inspect --json " + testing::shellQuote(*path), /*stderrToo=*/false);
  REQUIRE(r.exitCode == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["schema"] == "whittle.inspect/1");
  CHECK(j["parameters"]["total"] == 1235496);
  CHECK(j["parameters"]["byDtype"]["float32"]["count"] == 1235496);
  CHECK(j["macs"]["total"] == 349151936);
  CHECK(j["macs"]["batch"] == 1);
  CHECK(j["macs"]["approximate"] == false);
  CHECK(j["macs"]["byOpType"]["Conv"] == 349151936);
  CHECK(j["nodes"]["count"] == 66);
  CHECK(j["nodes"]["byOpType"]["Conv"] == 26);
  CHECK(j["model"]["irVersion"] == 3);
  CHECK(j["model"]["opsets"]["ai.onnx"] == 7);
  REQUIRE(j["inputs"].size() == 1);
  CHECK(j["inputs"][0]["name"] == "data_0");
  CHECK(j["inputs"][0]["dtype"] == "float32");
  CHECK(j["inputs"][0]["shape"] == nlohmann::json::array({1, 3, 224, 224}));
  CHECK(j["quantization"]["form"] == "none");
  CHECK(j["quantization"]["weightDtype"].is_null());
  CHECK(j["sparsity"]["weightElements"] == 1231552);
  CHECK(j["file"]["sizeBytes"] == 4955170);
  CHECK_FALSE(j.contains("shapes"));
}

TEST_CASE("whittle inspect text output names the key figures", "[inspect]") {
  auto path = testing::sharedPath("models/mobilenetv2-12-int8.onnx");
  if (!path) return;
  RunResult r = runWhittle("inspect --shapes " + testing::shellQuote(*path), /*stderrToo=*/true);
  REQUIRE(r.exitCode == 0);
  CHECK_THAT(r.out, Catch::Contains("3,487,816"));
  CHECK_THAT(r.out, Catch::Contains("300.8 M (300,774,272) at batch 1"));
  CHECK_THAT(r.out, Catch::Contains("com.microsoft.QLinearAdd"));
  CHECK_THAT(r.out, Catch::Contains("qoperator, int8 weights, per-channel"));
  CHECK_THAT(r.out, Catch::Contains("[batch_size, 3, 224, 224]"));
  CHECK_THAT(r.out, Catch::Contains("[1, 1000]"));  // the inferred output shape at batch 1
}

TEST_CASE("whittle inspect on a file that is not a model: exit code 2, one line naming it", "[inspect]") {
  testing::TempDir dir;
  std::string garbage = dir.file("garbage.onnx");
  {
    std::ofstream f(garbage, std::ios::binary);
    f << "\x0f\xff\xfe this is not a protobuf \x01\x02\x03";
  }
  RunResult r = runWhittle("inspect --json " + testing::shellQuote(garbage), /*stderrToo=*/true);
  CHECK(r.exitCode == 2);
  CHECK_THAT(r.out, Catch::StartsWith("whittle: error: "));
  CHECK_THAT(r.out, Catch::Contains(garbage));
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);

  RunResult missing = runWhittle("inspect " + testing::shellQuote(dir.file("missing.onnx")), /*stderrToo=*/true);
  CHECK(missing.exitCode == 2);
  CHECK_THAT(missing.out, Catch::Contains("missing.onnx"));
}

}  // namespace
}  // namespace whittle
