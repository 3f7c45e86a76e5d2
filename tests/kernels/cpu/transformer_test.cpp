// The com.microsoft transformer ops (kernels/cpu/transformer*.cpp): every case of
// tests/kernels/cpu/transformer_ort_cases.py against ONNX Runtime 1.32 (outputs and the shapes
// whittle's own inference gives them), and bad input refused with one line naming the node.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/ir/shape_inference.h"

namespace whittle {
namespace {

using ir::DataType;
using testing::NodeInput;

TEST_CASE("com.microsoft transformer ops match ONNX Runtime", "[kernels][transformer][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  testing::TempDir dir;
  auto cases = testing::referenceCases("tests/kernels/cpu/transformer_ort_cases.py", dir.path());
  std::set<std::string> ops;
  for (const testing::ReferenceCase& c : cases) {
    testing::checkReferenceCase(c, 1e-5);
    ops.insert(c.model.graph->nodes().front()->opType());
  }
  CHECK(cases.size() >= 60);
  for (const char* op : {"Gelu", "FastGelu", "BiasGelu", "QuickGelu", "SkipLayerNormalization",
                         "SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization", "LayerNormalization",
                         "FusedMatMul", "RotaryEmbedding", "Attention", "MultiHeadAttention",
                         "EmbedLayerNormalization"}) {
    CAPTURE(op);
    CHECK(ops.count(op) == 1);
  }
}

/// A model of one com.microsoft node named "node" over `inputs` (empty name: absent).
ir::Model msModel(const std::string& op, const std::vector<NodeInput>& inputs,
                  const std::vector<ir::Attribute>& attributes, size_t numOutputs = 1) {
  return testing::oneNodeModel(op, inputs, attributes, 17, numOutputs, {}, testing::InputShapes::kUndeclared,
                               "com.microsoft");
}

/// The message of running a com.microsoft node that must fail.
std::string failure(const std::string& op, const std::vector<NodeInput>& inputs,
                    const std::vector<ir::Attribute>& attributes = {}, size_t numOutputs = 1) {
  auto result = testing::tryRunModel(msModel(op, inputs, attributes, numOutputs), testing::feedsOf(inputs));
  REQUIRE_FALSE(result.isOk());
  const std::string& m = result.status().message();
  CHECK(m.find('\n') == std::string::npos);
  return m;
}

TEST_CASE("com.microsoft transformer ops refuse bad input naming the node", "[kernels][transformer]") {
  std::mt19937 rng(7);
  auto f = [&](std::vector<int64_t> dims) { return testing::randomTensor(rng, DataType::kFloat, std::move(dims)); };
  ir::Tensor x = f({2, 3, 8});
  using ir::Attribute;

  CHECK_THAT(failure("BiasGelu", {{"x", x}, {"b", f({5})}}),
             Catch::Contains("BiasGelu 'node'") && Catch::Contains("bias must be [8]"));
  CHECK_THAT(failure("BiasGelu", {{"x", x}}), Catch::Contains("input B (the bias) is required"));
  CHECK_THAT(failure("Gelu", {{"x", testing::randomTensor(rng, DataType::kInt32, {4})}}),
             Catch::Contains("Gelu 'node'") && Catch::Contains("only float32"));

  CHECK_THAT(failure("SkipLayerNormalization", {{"x", x}, {"s", f({2, 4, 8})}, {"g", f({8})}}),
             Catch::Contains("SkipLayerNormalization 'node'") && Catch::Contains("skip [2,4,8]"));
  CHECK_THAT(failure("SkipLayerNormalization", {{"x", x}, {"s", x}, {"g", f({7})}}),
             Catch::Contains("gamma must be [8]"));
  CHECK_THAT(failure("SkipSimplifiedLayerNormalization", {{"x", f({8})}, {"s", f({8})}, {"g", f({8})}}),
             Catch::Contains("rank 2 or more"));
  CHECK_THAT(failure("SimplifiedLayerNormalization", {{"x", x}, {"g", f({8})}}, {Attribute::makeInt("axis", 3)}),
             Catch::Contains("axis 3 is out of range"));

  CHECK_THAT(failure("FusedMatMul", {{"a", f({2, 3, 4})}, {"b", f({5, 6})}}),
             Catch::Contains("FusedMatMul 'node'") && Catch::Contains("do not multiply"));
  CHECK_THAT(failure("FusedMatMul", {{"a", f({2, 3, 4})}, {"b", f({4, 6})}}, {Attribute::makeInt("transA", 2)}),
             Catch::Contains("transA must be 0 or 1"));
  CHECK_THAT(failure("FusedMatMul", {{"a", f({2, 3, 4})}, {"b", f({3, 4, 6})}}),
             Catch::Contains("do not broadcast"));

  ir::Tensor pid = testing::makeTensor(DataType::kInt64, {1}, {9});
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"p", pid}, {"c", f({4, 2})}, {"s", f({4, 2})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("RotaryEmbedding 'node'") && Catch::Contains("position 9 is outside"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"p", pid}, {"c", f({16, 2})}, {"s", f({16, 3})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("must both be [max_position, rotary_dim / 2]"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"p", pid}, {"c", f({16, 2})}, {"s", f({16, 2})}},
                     {Attribute::makeInt("num_heads", 3)}),
             Catch::Contains("not a multiple of num_heads 3"));

  ir::Tensor w = f({8, 24});
  CHECK_THAT(failure("Attention", {{"x", x}, {"w", w}}), Catch::Contains("num_heads is required"));
  CHECK_THAT(failure("Attention", {{"x", x}, {"w", w}}, {Attribute::makeInt("num_heads", 0)}),
             Catch::Contains("num_heads must be positive"));
  CHECK_THAT(failure("Attention", {{"x", x}, {"w", f({8, 25})}}, {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("Attention 'node'") && Catch::Contains("do not split into Q, K and V"));
  CHECK_THAT(failure("Attention", {{"x", x}, {"w", w}, {"", {}}, {"m", testing::makeTensor(DataType::kInt32, {5}, {1, 1, 1, 1, 1})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("mask_index [5] must be"));
  CHECK_THAT(failure("Attention", {{"x", f({2, 8})}, {"w", w}}, {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("input must be [batch, seq, input_hidden]"));
  CHECK_THAT(failure("Attention", {{"x", x}, {"w", w}}, {Attribute::makeInt("num_heads", 2),
                                                          Attribute::makeInt("unidirectional", 3)}),
             Catch::Contains("unidirectional must be 0 or 1"));

  CHECK_THAT(failure("MultiHeadAttention", {{"q", x}, {"k", f({2, 4, 6})}, {"v", f({2, 4, 8})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("MultiHeadAttention 'node'") && Catch::Contains("key [2,4,6]"));
  CHECK_THAT(failure("MultiHeadAttention", {{"q", x}}, {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("packed QKV"));
  CHECK_THAT(failure("MultiHeadAttention", {{"q", x}, {"k", x}, {"v", x}, {"b", f({10})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("bias [10] must be [24]"));
  CHECK_THAT(failure("MultiHeadAttention", {{"q", x}, {"k", x}, {"v", x}, {"", {}}, {"", {}},
                                            {"ab", f({2, 2, 3, 4})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("attention_bias [2,2,3,4] must be"));

  auto embed = [&](ir::Tensor ids, std::vector<ir::Attribute> attrs) {
    return failure("EmbedLayerNormalization",
                   {{"i", std::move(ids)}, {"", {}}, {"w", f({4, 8})}, {"p", f({4, 8})}, {"", {}}, {"g", f({8})},
                    {"b", f({8})}},
                   attrs, 2);
  };
  CHECK_THAT(embed(testing::makeTensor(DataType::kInt32, {1, 2}, {0, 9}), {}),
             Catch::Contains("EmbedLayerNormalization 'node'") &&
                 Catch::Contains("input_ids holds 9, outside the table's 4 rows"));
  CHECK_THAT(embed(testing::makeTensor(DataType::kInt32, {1, 5}, {0, 1, 2, 3, 0}), {}),
             Catch::Contains("sequence length 5 exceeds position_embedding's 4 rows"));
  CHECK_THAT(embed(testing::makeTensor(DataType::kInt32, {2}, {0, 1}), {}),
             Catch::Contains("input_ids must be [batch, seq]"));
  CHECK_THAT(embed(testing::makeTensor(DataType::kInt32, {1, 2}, {0, 1}), {Attribute::makeInt("mask_index_type", 2)}),
             Catch::Contains("mask_index_type must be 0 or 1"));
}

}  // namespace
}  // namespace whittle
