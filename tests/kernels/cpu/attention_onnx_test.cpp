// The opset-23/24 Attention (kernels/cpu/attention_onnx.cpp), and with it RMSNormalization and
// RotaryEmbedding (kernels/cpu/rms_rotary.cpp): every case of
// tests/kernels/cpu/attention_onnx_ort_cases.py against ONNX Runtime 1.32, or against the spec's
// formulas in float64 where ONNX Runtime refuses what the spec allows (cases named *_spec), at
// 1 and 2 threads, with the shapes whittle's own inference gives the outputs; and bad input
// refused with one line naming the node.
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

using ir::Attribute;
using ir::DataType;
using testing::NodeInput;

TEST_CASE("opset-23 Attention, RMSNormalization and RotaryEmbedding match ONNX Runtime and the spec",
          "[kernels][attention_onnx][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  testing::TempDir dir;
  auto cases = testing::referenceCases("tests/kernels/cpu/attention_onnx_ort_cases.py", dir.path());
  std::set<std::string> ops;
  int specCases = 0;
  for (const testing::ReferenceCase& c : cases) {
    testing::checkReferenceCase(c, 1e-5);
    ops.insert(c.model.graph->nodes().front()->opType());
    if (c.name.size() > 5 && c.name.substr(c.name.size() - 5) == "_spec") ++specCases;
  }
  CHECK(cases.size() >= 53);
  CHECK(specCases >= 3);  // the mask broadcasts ONNX Runtime refuses
  CHECK(ops == std::set<std::string>{"Attention", "RMSNormalization", "RotaryEmbedding"});
}

/// The message of running a one-node opset-23 model that must fail.
std::string failure(const std::string& op, const std::vector<NodeInput>& inputs,
                    const std::vector<Attribute>& attributes = {}, size_t numOutputs = 1) {
  auto result = testing::tryRunModel(testing::oneNodeModel(op, inputs, attributes, 23, numOutputs),
                                     testing::feedsOf(inputs));
  REQUIRE_FALSE(result.isOk());
  const std::string& m = result.status().message();
  CHECK(m.find('\n') == std::string::npos);
  return m;
}

TEST_CASE("opset-23 Attention refuses bad input naming the node", "[kernels][attention_onnx]") {
  std::mt19937 rng(23);
  auto f = [&](std::vector<int64_t> dims) { return testing::randomTensor(rng, DataType::kFloat, std::move(dims)); };
  ir::Tensor q = f({2, 4, 5, 8});
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", f({2, 4, 5, 6})}, {"v", f({2, 4, 5, 8})}}),
             Catch::Contains("Attention") && Catch::Contains("K [2,4,5,6] and V [2,4,5,8] must be"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", f({2, 3, 5, 8})}, {"v", f({2, 3, 5, 8})}}),
             Catch::Contains("q heads 4 must be a multiple of kv heads 3"));
  CHECK_THAT(failure("Attention", {{"q", f({2, 5, 32})}, {"k", f({2, 5, 32})}, {"v", f({2, 5, 32})}}),
             Catch::Contains("need q_num_heads and kv_num_heads"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", f({2, 5, 32})}, {"v", f({2, 5, 32})}}),
             Catch::Contains("must all be rank 4"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}, {"m", f({3, 5, 5})}}),
             Catch::Contains("attn_mask [3,5,5] does not broadcast to [2, 4, 5, 5]"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}, {"m", f({5, 6})}}),
             Catch::Contains("does not broadcast"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}, {"", {}}, {"pk", f({2, 4, 3, 8})}}),
             Catch::Contains("past_key and past_value must be given together"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}, {"", {}}, {"pk", f({2, 4, 3, 7})}, {"pv", f({2, 4, 3, 8})}}),
             Catch::Contains("past_key [2,4,3,7] and past_value [2,4,3,8] must be"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}}, {Attribute::makeInt("qk_matmul_output_mode", 4)}),
             Catch::Contains("qk_matmul_output_mode must be 0 to 3"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}}, {Attribute::makeFloat("scale", -1.f)}),
             Catch::Contains("scale must be positive"));
  CHECK_THAT(failure("Attention", {{"q", q}, {"k", q}, {"v", q}}, {Attribute::makeInt("softmax_precision", 7)}),
             Catch::Contains("softmax_precision 7"));
  CHECK_THAT(failure("Attention", {{"q", testing::randomTensor(rng, DataType::kFloat16, {2, 4, 5, 8})}, {"k", q}, {"v", q}}),
             Catch::Contains("only float32"));
}

TEST_CASE("opset-23 RMSNormalization and RotaryEmbedding refuse bad input naming the node",
          "[kernels][attention_onnx]") {
  std::mt19937 rng(24);
  auto f = [&](std::vector<int64_t> dims) { return testing::randomTensor(rng, DataType::kFloat, std::move(dims)); };
  ir::Tensor x = f({2, 3, 8});
  CHECK_THAT(failure("RMSNormalization", {{"x", x}, {"s", f({7})}}),
             Catch::Contains("RMSNormalization") && Catch::Contains("scale [7] does not broadcast to the normalized dims [8]"));
  CHECK_THAT(failure("RMSNormalization", {{"x", x}, {"s", f({8})}}, {Attribute::makeInt("axis", 3)}),
             Catch::Contains("axis 3 is out of range"));
  CHECK_THAT(failure("RMSNormalization", {{"x", x}, {"s", f({8})}}, {Attribute::makeInt("stash_type", 10)}),
             Catch::Contains("stash_type 10 is not supported"));

  ir::Tensor ids = testing::makeTensor(DataType::kInt64, {2, 3}, {0, 1, 2, 3, 4, 9});
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"c", f({6, 2})}, {"s", f({6, 2})}, {"p", ids}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("RotaryEmbedding") && Catch::Contains("position 9 is outside cos_cache's 6 rows"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"c", f({16, 2})}, {"s", f({16, 2})}, {"p", ids}}),
             Catch::Contains("num_heads (0) must be positive"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"c", f({16, 3})}, {"s", f({16, 3})}, {"p", ids}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("must both be [max_position, 2] with position_ids"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"c", f({2, 3, 3})}, {"s", f({2, 3, 3})}},
                     {Attribute::makeInt("num_heads", 2)}),
             Catch::Contains("must both be [2, 3, 2] without position_ids"));
  CHECK_THAT(failure("RotaryEmbedding", {{"x", x}, {"c", f({16, 2})}, {"s", f({16, 2})}, {"p", ids}},
                     {Attribute::makeInt("num_heads", 2), Attribute::makeInt("rotary_embedding_dim", 6)}),
             Catch::Contains("rotary_embedding_dim 6 must be even and at most the head size 4"));
}

}  // namespace
}  // namespace whittle
