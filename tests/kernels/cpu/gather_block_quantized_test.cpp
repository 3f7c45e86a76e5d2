// com.microsoft GatherBlockQuantized against ONNX Runtime on int4, uint4 and packed uint8 tables
// (with and without zero points, blocks of 16 and 32, a 3-D table gathered along axis 1), and
// the cases it refuses.
#include <catch2/catch.hpp>


#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/temp_dir.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("GatherBlockQuantized matches ONNX Runtime", "[kernels][nbits][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  testing::TempDir dir;
  auto cases = testing::referenceCases("tests/kernels/cpu/gather_block_quantized_reference.py", dir.path());
  for (const testing::ReferenceCase& c : cases) {
    CAPTURE(c.name);
    const ir::Tensor& ids = c.arrays.at("ids");
    const ir::Tensor& y = c.arrays.at("y");
    auto got = testing::runOutputs(c.model, {{"ids", ids}});
    REQUIRE(got[0].dims() == y.dims());
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(got[0].data<float>()[i] == Approx(y.data<float>()[i]).margin(1e-6));
  }
  CHECK(cases.size() == 6);
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
