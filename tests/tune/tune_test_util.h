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

/// x[N,3,8,8] -> Conv "stem" (3 -> 8, 3x3, pad 1) -> Relu -> Conv "dw" (depthwise, pad 1;
/// channel 0's weights 30x the others) -> Clip(0, 6) -> Conv "pw" (1x1, 8 -> 4) ->
/// GlobalAveragePool -> Flatten -> y[N,4]; every Conv with a bias. Written to dir/model.onnx with
/// dir/calib.npy (32 samples) and dir/eval.npy (48), inputs in [0, 1].
inline std::string writeDepthwiseModel(const TempDir& dir) {
  GraphBuilder b(31);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat,
                                 {ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(8), ir::Dim::known(8)});
  const auto pads = ir::Attribute::makeInts("pads", {1, 1, 1, 1});
  ir::Value* h = b.node("Conv", {x, b.weight("ws", {8, 3, 3, 3}, ir::DataType::kFloat, -0.5, 0.5),
                                 b.weight("bs", {8}, ir::DataType::kFloat, -0.1, 0.1)},
                        {pads}, "stem");
  h = b.node("Relu", {h}, {}, "relu");
  ir::Tensor wd = b.randomTensor(ir::DataType::kFloat, {8, 1, 3, 3}, -0.3, 0.3);
  for (int64_t k = 0; k < 9; ++k) wd.mutableData<float>()[k] *= 30.0f;
  h = b.node("Conv", {h, b.constant("wd", wd), b.weight("bd", {8}, ir::DataType::kFloat, -0.1, 0.1)},
             {ir::Attribute::makeInt("group", 8), pads}, "dw");
  h = b.node("Clip", {h, b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {6.0f})}, {}, "clip");
  h = b.node("Conv", {h, b.weight("wp", {4, 8, 1, 1}, ir::DataType::kFloat, -0.5, 0.5),
                      b.weight("bp", {4}, ir::DataType::kFloat, -0.1, 0.1)},
             {}, "pw");
  h = b.node("GlobalAveragePool", {h}, {}, "gap");
  ir::Value* y = b.node("Flatten", {h}, {}, "flatten");
  b.output(y, ir::DataType::kFloat, {1, 4});
  ir::Model m = b.build(13);
  m.graph->outputs()[0]->mutableType().shape = std::vector<ir::Dim>{ir::Dim::symbolic("N"), ir::Dim::known(4)};
  std::string path = dir.file("model.onnx");
  REQUIRE(onnx_io::save(m, path).isOk());
  GraphBuilder calib(17), eval(18);
  REQUIRE(data::writeNpy(calib.randomTensor(ir::DataType::kFloat, {32, 3, 8, 8}, 0, 1), dir.file("calib.npy")).isOk());
  REQUIRE(data::writeNpy(eval.randomTensor(ir::DataType::kFloat, {48, 3, 8, 8}, 0, 1), dir.file("eval.npy")).isOk());
  return path;
}


/// What writeCellDecoder's decoder gets wrong on purpose (the error tests).
enum class DecoderFlaw { kNone, kReadsMissingOutput, kBoxesRank1, kBoxesRank1Undeclared };

/// A detection decoder for the hostile model's output mm3 [N, 16] (read one sample at a time,
/// [1, 16]): each of the 16 values is a cell's score, a detection when above `threshold`; cell i's
/// box is (4 i, 0, 4 i + 1 + exp(score), 2), so neighbouring cells overlap only when a score
/// passes ln 3. NonMaxSuppression at IoU 0.5, then TopK orders the kept ones by score. Written
/// to dir/`name`; outputs boxes [K, 4], scores [K] (and classes [K], all 0, with `classes`).
inline std::string writeCellDecoder(const TempDir& dir, const std::string& name, float threshold = 0.0f,
                                    DecoderFlaw flaw = DecoderFlaw::kNone, bool classes = false) {
  GraphBuilder b(5);
  ir::Value* in = b.input(flaw == DecoderFlaw::kReadsMissingOutput ? "boxes" : "mm3", ir::DataType::kFloat, {1, 16});
  ir::Value* flat = b.node("Reshape", {in, b.constantInt64("flat", {1}, {-1})});
  ir::Value* above = b.node("Greater", {flat, b.constant("thr", {}, {threshold})});
  ir::Value* idx = b.node("Reshape", {b.node("NonZero", {above}), b.constantInt64("flat2", {1}, {-1})});
  ir::Value* score = b.node("Gather", {flat, idx}, {ir::Attribute::makeInt("axis", 0)});
  ir::Value* x1 = b.node("Mul", {b.node("Cast", {idx}, {ir::Attribute::makeInt("to", 1)}), b.constant("four", {}, {4.0f})});
  ir::Value* x2 = b.node("Add", {b.node("Add", {x1, b.constant("one", {}, {1.0f})}), b.node("Exp", {score})});
  ir::Value* y1 = b.node("Mul", {x1, b.constant("zero", {}, {0.0f})});
  ir::Value* y2 = b.node("Add", {y1, b.constant("two", {}, {2.0f})});
  ir::Value* axis1 = b.constantInt64("axis1", {1}, {1});
  std::vector<ir::Value*> cols;
  for (ir::Value* c : {x1, y1, x2, y2}) cols.push_back(b.node("Unsqueeze", {c, axis1}));
  ir::Value* boxes = b.node("Concat", cols, {ir::Attribute::makeInt("axis", 1)});
  ir::Value* sel = b.node("NonMaxSuppression",
                          {b.node("Unsqueeze", {boxes, b.constantInt64("axis0", {1}, {0})}),
                           b.node("Reshape", {score, b.constantInt64("s3", {3}, {1, 1, -1})}),
                           b.constantInt64("max", {1}, {100}), b.constant("iou", {1}, {0.5f})});
  ir::Value* kept = b.node("Gather", {sel, b.constantInt64("col", {}, {2})}, {ir::Attribute::makeInt("axis", 1)});
  ir::Value* keptScores = b.node("Gather", {score, kept}, {ir::Attribute::makeInt("axis", 0)});
  auto top = b.nodeN("TopK", {keptScores, b.node("Shape", {keptScores})}, 2);
  ir::Value* order = b.node("Gather", {kept, top[1]}, {ir::Attribute::makeInt("axis", 0)});
  ir::Value* outBoxes = b.node("Gather", {boxes, order}, {ir::Attribute::makeInt("axis", 0)});
  if (flaw == DecoderFlaw::kBoxesRank1 || flaw == DecoderFlaw::kBoxesRank1Undeclared) {
    outBoxes = b.node("Reshape", {outBoxes, b.constantInt64("flat3", {1}, {-1})});
  }
  b.output(outBoxes, ir::DataType::kFloat, flaw == DecoderFlaw::kBoxesRank1 ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 4});
  b.output(top[0], ir::DataType::kFloat, {1});
  if (classes) b.output(b.node("Mul", {top[1], b.constantInt64("no_class", {}, {0})}), ir::DataType::kInt64, {1});
  ir::Model m = b.build(13);
  // The number of detections is not known before the run.
  const auto& outs = m.graph->outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    if (flaw == DecoderFlaw::kBoxesRank1Undeclared && i == 0) {
      outs[i]->mutableType().shape.reset();
    } else if (i == 0 && flaw != DecoderFlaw::kBoxesRank1) {
      outs[i]->mutableType().shape = std::vector<ir::Dim>{ir::Dim::symbolic("K"), ir::Dim::known(4)};
    } else {
      outs[i]->mutableType().shape = std::vector<ir::Dim>{ir::Dim::symbolic("K")};
    }
  }
  const std::string path = dir.file(name);
  REQUIRE(onnx_io::save(m, path).isOk());
  return path;
}

}  // namespace whittle::testing
