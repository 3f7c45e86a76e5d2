// com.microsoft GatherBlockQuantized against ONNX Runtime on int4, uint4 and packed uint8 tables
// (with and without zero points, blocks of 16 and 32, a 3-D table gathered along axis 1), and
// the cases it refuses.
#include <catch2/catch.hpp>

#include <sstream>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("GatherBlockQuantized matches ONNX Runtime", "[kernels][nbits][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  testing::TempDir dir;
  std::string out;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/kernels/cpu/gather_block_quantized_reference.py";
  REQUIRE(testing::shell(testing::python() + " " + testing::shellQuote(script) + " " + testing::shellQuote(dir.path()), &out) == 0);
  std::istringstream names(out);
  int cases = 0;
  for (std::string name; std::getline(names, name);) {
    if (name.empty()) continue;
    CAPTURE(name);
    ++cases;
    auto model = onnx_io::load(dir.path() + "/" + name + ".onnx");
    REQUIRE(model.isOk());
    auto arrays = data::readNpz(dir.path() + "/" + name + ".npz");
    REQUIRE(arrays.isOk());
    const ir::Tensor& ids = (*arrays)[0].first == "ids" ? (*arrays)[0].second : (*arrays)[1].second;
    const ir::Tensor& y = (*arrays)[0].first == "y" ? (*arrays)[0].second : (*arrays)[1].second;
    auto got = testing::runOutputs(*model, {{"ids", ids}});
    REQUIRE(got[0].dims() == y.dims());
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(got[0].data<float>()[i] == Approx(y.data<float>()[i]).margin(1e-6));
  }
  CHECK(cases == 6);
}

TEST_CASE("GatherBlockQuantized refuses what it does not run, naming the node", "[kernels][nbits]") {
  testing::GraphBuilder gb;
  ir::Tensor data(DataType::kUint8, {4, 16});
  std::fill(reinterpret_cast<uint8_t*>(data.mutableRawData()), reinterpret_cast<uint8_t*>(data.mutableRawData()) + 64, uint8_t{0x21});
  ir::Value* ids = gb.input("ids", DataType::kInt64, {2});
  gb.output(gb.node("GatherBlockQuantized", {gb.constant("data", data), ids, gb.weight("scales", {4, 1})},
                    {ir::Attribute::makeInt("block_size", 32), ir::Attribute::makeInt("quantize_axis", 0)}, "gbq",
                    "com.microsoft"));
  ir::Model model = gb.build(21);
  auto r = testing::tryRunModel(model, {{"ids", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {0, 3})}});
  REQUIRE_FALSE(r.isOk());
  CHECK_THAT(r.status().message(), Catch::Contains("'gbq'") && Catch::Contains("quantize_axis must be the last axis"));
}
