#pragma once
// Small models and data for the tests of the evaluation engine and of whittle compare (library,
// reports and command).

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::testing {

// x[N,4] -> MatMul -> h1 -> Relu -> r1 -> MatMul -> h2 -> Relu -> r2 -> MatMul -> logits[N,5].
inline ir::Model mlp() {
  GraphBuilder b(7);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* h1 = b.node("MatMul", {x, b.weight("w1", {4, 6})}, {}, "h1");
  ir::Value* r1 = b.node("Relu", {h1}, {}, "r1");
  ir::Value* h2 = b.node("MatMul", {r1, b.weight("w2", {6, 6})}, {}, "h2");
  ir::Value* r2 = b.node("Relu", {h2}, {}, "r2");
  ir::Value* logits = b.node("MatMul", {r2, b.weight("w3", {6, 5})}, {}, "logits");
  b.output(logits, ir::DataType::kFloat, {-1, 5});
  ir::Model m = b.build();
  m.graph->outputs()[0]->mutableType().shape = std::vector<ir::Dim>{ir::Dim::symbolic("batch"), ir::Dim::known(5)};
  return m;
}

// Scales the weight `name` by factors from 0.5 to 1.5: a deliberately damaged layer.
inline void perturb(ir::Model& model, const std::string& name) {
  ir::Value* w = model.graph->findValue(name);
  REQUIRE(w != nullptr);
  REQUIRE(w->constant() != nullptr);
  ir::Tensor t = *w->constant();
  float* p = t.mutableData<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= 1.0f + 0.5f * static_cast<float>((i % 7) - 3) / 3.0f;
  w->setConstant(std::move(t));
}

// mlp() with a uint8 QuantizeLinear -> DequantizeLinear pair (scale 0.02) on r1, read by h2's
// MatMul: r1_quantized -> r1_dequantized.
inline ir::Model mlpWithQdqOnR1() {
  ir::Model q = mlp();
  ir::Graph& g = *q.graph;
  ir::Value* r1 = g.findValue("r1");
  ir::Value* scale = g.addInitializer("r1_scale", ir::Tensor::fromVector<float>(ir::DataType::kFloat, {}, {0.02f}));
  ir::Value* zp = g.addInitializer("r1_zp", ir::Tensor::fromVector<uint8_t>(ir::DataType::kUint8, {}, {0}));
  ir::Node* h2 = g.findValue("h2")->producer();
  ir::Node* quant = g.addNode("QuantizeLinear", {r1, scale, zp}, {"r1_quantized"}, "r1_q", "", h2);
  ir::Node* dequant = g.addNode("DequantizeLinear", {quant->output(0), scale, zp}, {"r1_dequantized"}, "r1_dq", "", h2);
  h2->setInput(0, dequant->output(0));
  return q;
}

struct FusedPair {
  ir::Model original, optimized;
};

// Original: x[2,4] -> MatMul -> h1 -> Add(b) -> a1 -> Relu -> r1 -> MatMul -> y.
// Optimized: the same math, but the value named h1 is now Relu(MatMul + b), as a fusion that
// keeps the first node's output name leaves it; a1 and r1 are gone.
inline FusedPair fusedChain() {
  GraphBuilder o(3);
  ir::Value* x = o.input("x", ir::DataType::kFloat, {2, 4});
  ir::Value* w = o.weight("w", {4, 6});
  ir::Value* bias = o.weight("b", {6});
  ir::Value* w2 = o.weight("w2", {6, 3});
  ir::Value* h1 = o.node("MatMul", {x, w}, {}, "h1");
  ir::Value* a1 = o.node("Add", {h1, bias}, {}, "a1");
  ir::Value* r1 = o.node("Relu", {a1}, {}, "r1");
  o.output(o.node("MatMul", {r1, w2}, {}, "y"), ir::DataType::kFloat, {2, 3});
  FusedPair p{o.build(), {}};
  p.optimized = p.original.clone();
  ir::Graph& g = *p.optimized.graph;
  ir::Value* r1v = g.findValue("r1");
  ir::Value* h1v = g.findValue("h1");
  REQUIRE(g.renameValue(h1v, "h1_mm").isOk());
  REQUIRE(g.renameValue(g.findValue("a1"), "h1_add").isOk());
  REQUIRE(g.renameValue(r1v, "h1").isOk());
  return p;
}

struct Files {
  std::string data, labels;
};

// 12 seeded samples and labels 0..4.
inline Files writeData(const TempDir& dir) {
  GraphBuilder b(11);
  ir::Tensor x = b.randomTensor(ir::DataType::kFloat, {12, 4});
  Files f{dir.file("x.npy"), dir.file("labels.txt")};
  REQUIRE(data::writeNpy(x, f.data).isOk());
  std::ofstream out(f.labels);
  for (int i = 0; i < 12; ++i) out << (i % 5) << "\n";
  return f;
}

inline std::string save(const ir::Model& m, const TempDir& dir, const std::string& name) {
  std::string path = dir.file(name);
  REQUIRE(onnx_io::save(m, path).isOk());
  return path;
}

}  // namespace whittle::testing
