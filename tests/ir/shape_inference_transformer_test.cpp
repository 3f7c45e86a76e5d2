// Shape rules of src/ir/shape_inference_transformer.cpp: the standard Attention of opset 23/24
// (rank 4 and rank 3, past key/value, the qk output) with symbolic batch and sequence dims. (The
// com.microsoft rules are checked against ONNX Runtime in tests/kernels/cpu/transformer_test.cpp.)
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::typeOf;

TEST_CASE("Attention (opset 23): rank 4 and rank 3, past, present and qk shapes", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* q = b.symbolicInput("q", DataType::kFloat, dims({"B", "8", "S", "64"}));
  ir::Value* k = b.symbolicInput("k", DataType::kFloat, dims({"B", "2", "L", "64"}));
  ir::Value* v = b.symbolicInput("v", DataType::kFloat, dims({"B", "2", "L", "32"}));
  ir::Value* pk = b.symbolicInput("pk", DataType::kFloat, dims({"B", "2", "3", "64"}));
  ir::Value* pv = b.symbolicInput("pv", DataType::kFloat, dims({"B", "2", "3", "32"}));
  ir::Value* k1 = b.symbolicInput("k1", DataType::kFloat, dims({"B", "2", "1", "64"}));
  ir::Value* v1 = b.symbolicInput("v1", DataType::kFloat, dims({"B", "2", "1", "32"}));
  ir::Value* y4 = b.node("Attention", {q, k, v});
  std::vector<ir::Value*> past = b.nodeN("Attention", {q, k1, v1, nullptr, pk, pv}, 4, {});
  std::vector<ir::Value*> symPast = b.nodeN("Attention", {q, k, v, nullptr, pk, pv}, 2, {});
  ir::Value* q3 = b.symbolicInput("q3", DataType::kFloat, dims({"B", "S", "512"}));
  ir::Value* k3 = b.symbolicInput("k3", DataType::kFloat, dims({"B", "L", "128"}));
  ir::Value* v3 = b.symbolicInput("v3", DataType::kFloat, dims({"B", "L", "96"}));
  ir::Value* y3 = b.node("Attention", {q3, k3, v3}, {intAttr("q_num_heads", 8), intAttr("kv_num_heads", 2)});
  ir::Value* noHeads = b.node("Attention", {q3, k3, v3});
  ir::Model model;
  testing::buildAndInfer(b, model, 23);
  CHECK(typeOf(y4) == "float32[B,8,S,32]");
  CHECK(typeOf(past[0]) == "float32[B,8,S,32]");
  CHECK(typeOf(past[1]) == "float32[B,2,4,64]");
  CHECK(typeOf(past[2]) == "float32[B,2,4,32]");
  CHECK(typeOf(past[3]) == "float32[B,8,S,4]");
  CHECK(typeOf(symPast[1]) == "float32[B,2,?,64]");  // 3 + L has no name
  CHECK(typeOf(y3) == "float32[B,S,384]");
  CHECK(typeOf(noHeads) == "float32[B,S,?]");
}
