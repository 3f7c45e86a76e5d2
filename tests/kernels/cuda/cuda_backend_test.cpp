// The CUDA backend against the CPU runtime on small graphs. Tagged [cuda]: where no device is
// present (or the build has no CUDA backend) each case warns "skipped: ..." with the reason
// and returns; scripts/gpu_check.sh runs them on a GPU, also under compute-sanitizer.
#include <catch2/catch.hpp>

#include <random>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/tolerance.h"
#include "whittle/runtime/device.h"
#include "whittle/runtime/session.h"

namespace whittle {
namespace {

using ir::DataType;
using testing::NodeInput;

/// Whether a CUDA device can be used; warns the reason and returns false otherwise.
bool cudaPresent() {
  auto backend = runtime::backendFor(runtime::DeviceKind::kCuda);
  if (!backend.isOk()) {
    WARN("skipped: " << backend.status().message());
    return false;
  }
  return true;
}

std::vector<runtime::NamedTensor> runOn(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                        runtime::DeviceKind device) {
  runtime::SessionOptions options;
  options.device = device;
  auto session = runtime::Session::create(model, options);
  INFO(session.status().message());
  REQUIRE(session.isOk());
  auto out = (*session)->run(feeds);
  INFO(out.status().message());
  REQUIRE(out.isOk());
  return std::move(out).value();
}

/// Runs `model` on the CPU and on the GPU and checks every output within rtol/atol.
void checkAgainstCpu(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds, double rtol, double atol,
                     const std::string& what) {
  auto cpu = runOn(model, feeds, runtime::DeviceKind::kCpu);
  auto gpu = runOn(model, feeds, runtime::DeviceKind::kCuda);
  REQUIRE(cpu.size() == gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO(what << ": output " << cpu[i].first);
    REQUIRE(gpu[i].second.dtype() == cpu[i].second.dtype());
    REQUIRE(gpu[i].second.dims() == cpu[i].second.dims());
    testing::checkClose(gpu[i].second, testing::tensorValues(cpu[i].second), rtol, atol, what);
  }
}

/// One node over random float inputs of `dims` (all fed), on CPU and GPU.
void checkNode(const std::string& op, DataType dtype, const std::vector<std::vector<int64_t>>& dims,
               const std::vector<ir::Attribute>& attributes = {}, int64_t opset = 17, double rtol = 1e-5,
               double atol = 1e-6) {
  std::mt19937 rng(7);
  std::vector<NodeInput> inputs;
  for (size_t i = 0; i < dims.size(); ++i) {
    inputs.push_back({"x" + std::to_string(i), testing::randomTensor(rng, dtype, dims[i], -2.0, 2.0)});
  }
  ir::Model model = testing::oneNodeModel(op, inputs, attributes, opset);
  checkAgainstCpu(model, testing::feedsOf(inputs), rtol, atol, op + " " + std::string(ir::dataTypeName(dtype)));
}

TEST_CASE("the CUDA backend is there or says why not", "[cuda]") {
  auto backend = runtime::backendFor(runtime::DeviceKind::kCuda);
  if (!runtime::builtWithCuda()) {
    REQUIRE_FALSE(backend.isOk());
    CHECK_THAT(backend.status().message(), Catch::Contains("not built"));
    return;
  }
  if (!backend.isOk()) {
    CHECK_THAT(backend.status().message(), Catch::StartsWith("no CUDA device"));
    // A session on cuda fails with the same one-line reason.
    testing::GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {2});
    b.output(b.node("Relu", {x}));
    runtime::SessionOptions options;
    options.device = runtime::DeviceKind::kCuda;
    auto session = runtime::Session::create(b.build(17), options);
    REQUIRE_FALSE(session.isOk());
    CHECK(session.status().message() == backend.status().message());
    WARN("skipped: " << backend.status().message());
    return;
  }
  CHECK((*backend)->name() == "cuda");
  CHECK((*backend)->device() == runtime::DeviceKind::kCuda);
}

TEST_CASE("device names parse and the GPU path warns that it is unverified", "[cuda]") {
  CHECK(*runtime::parseDevice("cpu") == runtime::DeviceKind::kCpu);
  CHECK(*runtime::parseDevice("cuda") == runtime::DeviceKind::kCuda);
  CHECK_FALSE(runtime::parseDevice("tpu").isOk());
  CHECK(runtime::deviceName(runtime::DeviceKind::kCuda) == "cuda");
  CHECK_THAT(std::string(runtime::cudaUnverifiedWarning()), Catch::Contains("unverified"));
}

TEST_CASE("CUDA elementwise ops match the CPU", "[cuda]") {
  if (!cudaPresent()) return;
  for (DataType t : {DataType::kFloat, DataType::kFloat16}) {
    const double rtol = t == DataType::kFloat ? 1e-5 : 2e-3, atol = t == DataType::kFloat ? 1e-6 : 1e-3;
    checkNode("Add", t, {{2, 3, 4}, {4}}, {}, 17, rtol, atol);
    checkNode("Mul", t, {{2, 1, 4}, {3, 1}}, {}, 17, rtol, atol);
    checkNode("Sub", t, {{1, 5}, {6, 1}}, {}, 17, rtol, atol);
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Erf", "HardSwish", "Softplus"}) {
      checkNode(op, t, {{3, 17}}, {}, 17, rtol * 10, atol * 10);
    }
    checkNode("LeakyRelu", t, {{40}}, {ir::Attribute::makeFloat("alpha", 0.1f)}, 17, rtol, atol);
  }
  checkNode("Gelu", DataType::kFloat, {{50}}, {}, 20, 1e-5, 1e-6);
  checkNode("Div", DataType::kFloat, {{64}, {64}}, {}, 17, 1e-5, 1e-6);
  checkNode("Max", DataType::kFloat, {{3, 4}, {4}}, {}, 17, 0, 0);
  checkNode("Less", DataType::kFloat, {{3, 4}, {3, 1}}, {}, 17, 0, 0);
}

TEST_CASE("CUDA MatMul and Gemm match the CPU (float32 without TF32, float16)", "[cuda]") {
  if (!cudaPresent()) return;
  checkNode("MatMul", DataType::kFloat, {{2, 3, 17, 33}, {2, 3, 33, 9}}, {}, 17, 1e-4, 1e-5);
  checkNode("MatMul", DataType::kFloat, {{4, 17, 33}, {33, 9}}, {}, 17, 1e-4, 1e-5);
  checkNode("MatMul", DataType::kFloat, {{33}, {2, 33, 9}}, {}, 17, 1e-4, 1e-5);
  checkNode("MatMul", DataType::kFloat, {{2, 1, 5, 8}, {1, 3, 8, 4}}, {}, 17, 1e-4, 1e-5);
  checkNode("MatMul", DataType::kFloat16, {{3, 16, 64}, {64, 32}}, {}, 17, 1e-2, 1e-2);
  checkNode("Gemm", DataType::kFloat, {{7, 12}, {5, 12}, {5}}, {ir::Attribute::makeInt("transB", 1)}, 17, 1e-4, 1e-5);
  checkNode("Gemm", DataType::kFloat, {{12, 7}, {12, 5}, {7, 5}},
            {ir::Attribute::makeInt("transA", 1), ir::Attribute::makeFloat("alpha", 0.5f), ir::Attribute::makeFloat("beta", 2.0f)},
            17, 1e-4, 1e-5);
}

TEST_CASE("CUDA Conv and pooling match the CPU", "[cuda]") {
  if (!cudaPresent()) return;
  std::mt19937 rng(3);
  for (DataType t : {DataType::kFloat, DataType::kFloat16}) {
    const double rtol = t == DataType::kFloat ? 1e-4 : 1e-2, atol = t == DataType::kFloat ? 1e-5 : 1e-2;
    std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, t, {2, 8, 9, 9})},
                                     {"w", testing::randomTensor(rng, t, {8, 2, 3, 3}), true},
                                     {"b", testing::randomTensor(rng, t, {8}), true}};
    ir::Model conv = testing::oneNodeModel("Conv", inputs,
                                           {ir::Attribute::makeInt("group", 4), ir::Attribute::makeInts("pads", {1, 1, 1, 1}),
                                            ir::Attribute::makeInts("strides", {2, 2})},
                                           17);
    checkAgainstCpu(conv, testing::feedsOf(inputs), rtol, atol, "grouped Conv");
    checkNode("MaxPool", t, {{1, 3, 10, 10}},
              {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("strides", {2, 2}),
               ir::Attribute::makeInts("pads", {1, 1, 1, 1})},
              17, rtol, atol);
    checkNode("AveragePool", t, {{1, 3, 10, 10}},
              {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})}, 17, rtol, atol);
    checkNode("GlobalAveragePool", t, {{2, 5, 7, 7}}, {}, 17, rtol, atol);
  }
}

TEST_CASE("CUDA Softmax and LayerNormalization match the CPU", "[cuda]") {
  if (!cudaPresent()) return;
  checkNode("Softmax", DataType::kFloat, {{4, 5, 1000}}, {}, 17, 1e-5, 1e-7);
  checkNode("Softmax", DataType::kFloat16, {{4, 33}}, {}, 17, 2e-3, 1e-4);
  checkNode("LogSoftmax", DataType::kFloat, {{3, 10}}, {}, 17, 1e-5, 1e-6);
  checkNode("LayerNormalization", DataType::kFloat, {{2, 7, 384}, {384}, {384}}, {}, 17, 1e-4, 1e-5);
  checkNode("LayerNormalization", DataType::kFloat16, {{2, 7, 64}, {64}, {64}}, {}, 17, 1e-2, 1e-2);
}

TEST_CASE("CUDA data movement matches the CPU", "[cuda]") {
  if (!cudaPresent()) return;
  checkNode("Transpose", DataType::kFloat, {{2, 3, 4, 5}}, {ir::Attribute::makeInts("perm", {0, 2, 3, 1})});
  checkNode("Concat", DataType::kFloat, {{2, 3, 4}, {2, 5, 4}, {2, 1, 4}}, {ir::Attribute::makeInt("axis", 1)});
  std::mt19937 rng(5);
  {
    std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, DataType::kFloat, {6, 8, 5})},
                                     {"starts", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {1, -1}), true},
                                     {"ends", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {6, 0}), true},
                                     {"axes", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {0, 1}), true},
                                     {"steps", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {2, -3}), true}};
    checkAgainstCpu(testing::oneNodeModel("Slice", inputs, {}, 17), testing::feedsOf(inputs), 0, 0, "Slice");
  }
  {
    std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, DataType::kFloat, {10, 6})},
                                     {"i", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2, 2}, {0, 9, -1, 3})}};
    checkAgainstCpu(testing::oneNodeModel("Gather", inputs, {}, 17), testing::feedsOf(inputs), 0, 0, "Gather");
    // An index out of range is an error naming the node, not zeros.
    std::vector<NodeInput> bad = {inputs[0], {"i", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {1}, {10})}};
    runtime::SessionOptions options;
    options.device = runtime::DeviceKind::kCuda;
    auto session = runtime::Session::create(testing::oneNodeModel("Gather", bad, {}, 17), options);
    REQUIRE(session.isOk());
    auto out = (*session)->run(testing::feedsOf(bad));
    REQUIRE_FALSE(out.isOk());
    CHECK_THAT(out.status().message(), Catch::Contains("'node'") && Catch::Contains("out of range"));
  }
  {
    testing::GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
    ir::Value* shape = b.constant("shape", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2}, {0, -1}));
    ir::Value* r = b.node("Reshape", {x, shape});
    ir::Value* s = b.node("Shape", {x});
    ir::Value* c = b.node("Cast", {s}, {ir::Attribute::makeInt("to", 1)});
    b.output(b.node("Relu", {r}));
    b.output(c);
    std::mt19937 r2(1);
    checkAgainstCpu(b.build(17), {{"x", testing::randomTensor(r2, DataType::kFloat, {2, 3, 4})}}, 0, 0, "Reshape/Shape/Cast");
  }
}

TEST_CASE("CUDA Quantize/DequantizeLinear and MatMulNBits match the CPU", "[cuda]") {
  if (!cudaPresent()) return;
  std::mt19937 rng(9);
  std::vector<NodeInput> q = {{"x", testing::randomTensor(rng, DataType::kFloat, {2, 4, 5})},
                              {"s", testing::makeTensor(DataType::kFloat, {4}, {0.01, 0.02, 0.05, 0.1}), true},
                              {"z", testing::makeTensor(DataType::kInt8, {4}, {0, 3, -2, 1}), true}};
  checkAgainstCpu(testing::oneNodeModel("QuantizeLinear", q, {ir::Attribute::makeInt("axis", 1)}, 19), testing::feedsOf(q), 0,
                  0, "QuantizeLinear per axis");
  std::vector<NodeInput> dq = {{"x", testing::randomTensor(rng, DataType::kUint8, {3, 8}, 0, 255)},
                               {"s", testing::makeTensor(DataType::kFloat, {1}, {0.05}), true},
                               {"z", testing::makeTensor(DataType::kUint8, {1}, {128}), true}};
  checkAgainstCpu(testing::oneNodeModel("DequantizeLinear", dq, {}, 19), testing::feedsOf(dq), 1e-6, 1e-7,
                  "DequantizeLinear per tensor");

  const int64_t k = 64, n = 24, block = 32, blocks = k / block;
  testing::GraphBuilder b;
  ir::Value* a = b.input("a", DataType::kFloat, {3, k});
  ir::Value* w = b.constant("w", testing::randomTensor(rng, DataType::kUint8, {n, blocks, block / 2}, 0, 255));
  ir::Value* s = b.constant("s", testing::randomTensor(rng, DataType::kFloat, {n * blocks}, 0.01, 0.1));
  ir::Value* z = b.constant("z", testing::randomTensor(rng, DataType::kUint8, {n * ((blocks + 1) / 2)}, 0, 255));
  ir::Value* y = b.node("MatMulNBits", {a, w, s, z},
                        {ir::Attribute::makeInt("K", k), ir::Attribute::makeInt("N", n), ir::Attribute::makeInt("bits", 4),
                         ir::Attribute::makeInt("block_size", block)},
                        "nbits", "com.microsoft");
  b.output(y);
  ir::Model model = b.build(17);
  checkAgainstCpu(model, {{"a", testing::randomTensor(rng, DataType::kFloat, {3, k})}}, 1e-4, 1e-4, "MatMulNBits");
}

TEST_CASE("an op the CUDA backend lacks is a one-line error naming node and op", "[cuda]") {
  if (!cudaPresent()) return;
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 4, 8});
  b.output(b.node("CumSum", {x, b.constant("axis", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {}, {1}))}));
  runtime::SessionOptions options;
  options.device = runtime::DeviceKind::kCuda;
  auto session = runtime::Session::create(b.build(17), options);
  REQUIRE_FALSE(session.isOk());
  CHECK(session.status().code() == StatusCode::kUnimplemented);
  CHECK_THAT(session.status().message(), Catch::Contains("CumSum") && Catch::Contains("cuda runtime"));
  CHECK(session.status().message().find('\n') == std::string::npos);
}

}  // namespace
}  // namespace whittle
