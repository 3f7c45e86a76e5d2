#pragma once
// Shared by the tuner tests: a small model with one quantization-hostile layer, and seeded data.

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::testing {

/// x[N,16] -> MatMul "mm1" -> Relu -> MatMul "hostile" -> MatMul "mm3" -> y[N,16] (16 class
/// scores). Column 0 of hostile's weight is 1000x the others, so its output holds one channel
/// with a huge range: one activation scale for the whole tensor leaves the other 15 channels a
/// few levels, and mm3 reads mostly those (its row 0 is tiny). Written to dir/model.onnx, with
/// dir/calib.npy (64 samples) and dir/eval.npy (96 samples, disjoint seeds) and
/// dir/labels.txt (96 classes in 0..15) and dir/few_labels.txt (10: too few for the data).
inline std::string writeHostileModel(const TempDir& dir) {
  GraphBuilder b(2024);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("N"), ir::Dim::known(16)});
  ir::Value* h1 = b.node("Relu", {b.node("MatMul", {x, b.weight("w1", {16, 16}, ir::DataType::kFloat, -0.5, 0.5)}, {}, "mm1")},
                         {}, "relu1");
  ir::Tensor w2 = b.randomTensor(ir::DataType::kFloat, {16, 16}, -0.5, 0.5);
  for (int64_t i = 0; i < 16; ++i) w2.mutableData<float>()[i * 16] *= 1000.0f;
  ir::Value* h2 = b.node("MatMul", {h1, b.constant("w2", w2)}, {}, "hostile");
  ir::Tensor w3 = b.randomTensor(ir::DataType::kFloat, {16, 16}, -0.5, 0.5);
  for (int64_t j = 0; j < 16; ++j) w3.mutableData<float>()[j] *= 1e-4f;
  ir::Value* y = b.node("MatMul", {h2, b.constant("w3", w3)}, {}, "mm3");
  b.output(y, ir::DataType::kFloat, {1, 16});
  ir::Model m = b.build(13);
  m.graph->outputs()[0]->mutableType().shape = std::vector<ir::Dim>{ir::Dim::symbolic("N"), ir::Dim::known(16)};
  std::string path = dir.file("model.onnx");
  REQUIRE(onnx_io::save(m, path).isOk());
  GraphBuilder calib(7), eval(8);
  REQUIRE(data::writeNpy(calib.randomTensor(ir::DataType::kFloat, {64, 16}, -1, 1), dir.file("calib.npy")).isOk());
  REQUIRE(data::writeNpy(eval.randomTensor(ir::DataType::kFloat, {96, 16}, -1, 1), dir.file("eval.npy")).isOk());
  std::ofstream labels(dir.file("labels.txt")), few(dir.file("few_labels.txt"));
  for (int i = 0; i < 96; ++i) labels << (i * 7) % 16 << "\n";
  for (int i = 0; i < 10; ++i) few << i << "\n";
  return path;
}

}  // namespace whittle::testing
