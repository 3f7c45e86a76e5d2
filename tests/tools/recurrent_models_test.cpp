// End to end with a recurrent model: a small bidirectional-LSTM classifier built by
// tests/tools/make_lstm_model.py goes through `whittle optimize -O2` and `whittle compare`
// (fp32 against -O2), and through `whittle optimize --quantize int8 --calib`, where the LSTM
// stays float32 and the output says so.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/python.h"
#include "support/shell.h"
#include "support/temp_dir.h"

namespace whittle {
namespace {

using testing::TempDir;

std::string quoted(const std::string& s) { return testing::shellQuote(s); }

}  // namespace

TEST_CASE("whittle optimize and compare run a model with an LSTM", "[tools][recurrent]") {
  if (!testing::requirePython("numpy, onnx", "to build the LSTM model (make_lstm_model.py)")) return;
  TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/tools/make_lstm_model.py";
  std::string output;
  int rc = testing::shell(testing::python() + " " + quoted(script) + " " + quoted(dir.path()), &output);
  INFO(output);
  REQUIRE(rc == 0);
  const std::string model = dir.file("lstm.onnx"), data = dir.file("data.npy");

  // -O2, then compare against the original: the outputs agree to float rounding.
  const std::string o2 = dir.file("lstm.O2.onnx");
  testing::RunResult r = testing::runWhittle("optimize " + quoted(model) + " -o " + quoted(o2) + " -O2");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  const std::string json = dir.file("compare.json");
  r = testing::runWhittle("compare " + quoted(model) + " " + quoted(o2) + " --data " + quoted(data) +
                          " --latency-runs 2 --warmup 1 --min-sqnr 80 --json " + quoted(json));
  INFO(r.out);
  CHECK(r.exitCode == 0);
  nlohmann::json report = nlohmann::json::parse(testing::readBytes(json));
  CHECK(report.dump().find("logits") != std::string::npos);

  // int8 with calibration: the MatMul is quantized, the LSTM stays float32 and is named.
  const std::string int8 = dir.file("lstm.int8.onnx");
  r = testing::runWhittle("optimize " + quoted(model) + " -o " + quoted(int8) + " --quantize int8 --calib " +
                          quoted(data));
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  CHECK(r.out.find("LSTM 'lstm' stays float32") != std::string::npos);
  r = testing::runWhittle("compare " + quoted(model) + " " + quoted(int8) + " --data " + quoted(data) +
                          " --latency-runs 2 --warmup 1 --min-sqnr 15");
  INFO(r.out);
  CHECK(r.exitCode == 0);
}

}  // namespace whittle
