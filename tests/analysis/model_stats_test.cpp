#include "whittle/analysis/model_stats.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/shared_data.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::analysis {
namespace {

using ir::Attribute;
using ir::DataType;
using ir::Dim;

// ---------------------------------------------------------------- small graphs

ir::ValueType tensorType(DataType dtype, std::vector<Dim> dims) {
  return {dtype, std::move(dims), {}};
}

std::vector<Dim> known(std::vector<int64_t> dims) {
  std::vector<Dim> out;
  for (int64_t d : dims) out.push_back(Dim::known(d));
  return out;
}

/// A model with one opset-13 graph; helpers add inputs, weights and nodes.
struct TestModel {
  ir::Model model;
  ir::Graph& g = *model.graph;

  explicit TestModel(int64_t opset = 13) { model.opsetImports = {{"", opset}}; }

  ir::Value* input(const std::string& name, std::vector<Dim> dims, DataType dtype = DataType::kFloat) {
    return g.addInput(name, tensorType(dtype, std::move(dims)));
  }
  ir::Value* input(const std::string& name, std::vector<int64_t> dims, DataType dtype = DataType::kFloat) {
    return input(name, known(std::move(dims)), dtype);
  }
  /// A float weight filled with 1, except the first `zeros` elements.
  ir::Value* weight(const std::string& name, std::vector<int64_t> dims, int64_t zeros = 0) {
    ir::Tensor t(DataType::kFloat, std::move(dims));
    float* p = t.mutableData<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = i < zeros ? 0.0f : 1.0f;
    return g.addInitializer(name, std::move(t));
  }
  template <typename T>
  ir::Value* constant(const std::string& name, DataType dtype, std::vector<int64_t> dims,
                      const std::vector<T>& values) {
    return g.addInitializer(name, ir::Tensor::fromVector(dtype, std::move(dims), values));
  }
  ir::Node* node(const std::string& op, std::vector<ir::Value*> inputs, const std::string& name,
                 std::vector<Attribute> attributes = {}, const std::string& domain = "") {
    ir::Node* n = g.addNode(op, inputs, {name + "_out"}, name, domain);
    for (auto& a : attributes) n->setAttribute(std::move(a));
    return n;
  }
  void output(ir::Node* n) { g.addOutput(n->output(0)); }

  ModelStats stats() {
    auto s = computeStats(model, "");
    REQUIRE(s.isOk());
    return std::move(s).value();
  }
};

Attribute ints(const std::string& name, std::vector<int64_t> v) {
  return Attribute::makeInts(name, std::move(v));
}

/// MACs of a graph holding one Conv on `x` with weight dims `w`.
int64_t convMacs(std::vector<int64_t> x, std::vector<int64_t> w, std::vector<Attribute> attributes) {
  TestModel m;
  ir::Node* conv =
      m.node("Conv", {m.input("x", std::move(x)), m.weight("w", std::move(w))}, "conv", std::move(attributes));
  m.output(conv);
  ModelStats s = m.stats();
  CHECK_FALSE(s.macs.approximate);
  CHECK(s.macs.byOpType["Conv"] == s.macs.total);
  return s.macs.total;
}

TEST_CASE("convOutputSize follows the ONNX padding rules", "[analysis]") {
  CHECK(convOutputSize(224, 3, 2, 1, 0, 0, "NOTSET") == 111);
  CHECK(convOutputSize(224, 3, 1, 1, 1, 1, "NOTSET") == 224);
  CHECK(convOutputSize(7, 3, 2, 1, 0, 0, "SAME_UPPER") == 4);
  CHECK(convOutputSize(7, 3, 2, 1, 0, 0, "SAME_LOWER") == 4);
  CHECK(convOutputSize(7, 3, 2, 1, 5, 5, "VALID") == 3);
  CHECK(convOutputSize(10, 3, 1, 2, 0, 0, "NOTSET") == 6);  // dilated: effective kernel 5
  // Pooling with ceil_mode: 112 -> 56 (floor would give 55); the last window must start inside.
  CHECK(convOutputSize(112, 3, 2, 1, 0, 0, "NOTSET", /*ceilMode=*/true) == 56);
  CHECK(convOutputSize(112, 3, 2, 1, 0, 0, "NOTSET", /*ceilMode=*/false) == 55);
  CHECK(convOutputSize(5, 2, 2, 1, 1, 1, "NOTSET", /*ceilMode=*/true) == 3);
}

TEST_CASE("Conv MACs: plain, strided, padded, dilated, grouped, depthwise, auto_pad", "[analysis]") {
  // Every output element costs (C_in / group) x kernel multiply-accumulates.
  CHECK(convMacs({1, 3, 8, 8}, {4, 3, 3, 3}, {ints("pads", {1, 1, 1, 1})}) == 4 * 64 * 27);
  CHECK(convMacs({1, 3, 8, 8}, {4, 3, 3, 3}, {}) == 4 * 36 * 27);
  CHECK(convMacs({1, 3, 9, 9}, {8, 3, 3, 3}, {ints("strides", {2, 2}), ints("pads", {1, 1, 1, 1})}) == 8 * 25 * 27);
  CHECK(convMacs({1, 2, 10, 10}, {4, 2, 3, 3}, {ints("dilations", {2, 2})}) == 4 * 36 * 18);
  CHECK(convMacs({1, 8, 6, 6}, {4, 4, 1, 1}, {Attribute::makeInt("group", 2)}) == 4 * 36 * 4);
  CHECK(convMacs({1, 16, 8, 8}, {16, 1, 3, 3}, {Attribute::makeInt("group", 16), ints("pads", {1, 1, 1, 1})}) ==
        16 * 64 * 9);
  CHECK(convMacs({1, 1, 7, 7}, {2, 1, 3, 3},
                 {Attribute::makeString("auto_pad", "SAME_UPPER"), ints("strides", {2, 2})}) == 2 * 16 * 9);
  CHECK(convMacs({1, 1, 7, 7}, {2, 1, 3, 3}, {Attribute::makeString("auto_pad", "VALID"), ints("strides", {2, 2})}) ==
        2 * 9 * 9);
  CHECK(convMacs({1, 2, 16}, {4, 2, 3}, {}) == 4 * 14 * 6);  // 1-D
}

TEST_CASE("MACs are counted at batch 1; other symbolic dims make the count approximate", "[analysis]") {
  TestModel m;
  ir::Value* x = m.input("x", {Dim::symbolic("N"), Dim::known(3), Dim::known(8), Dim::known(8)});
  ir::Node* conv = m.node("Conv", {x, m.weight("w", {4, 3, 3, 3})}, "conv");
  ir::Node* conv2 = m.node("Conv", {conv->output(0), m.weight("w2", {2, 4, 1, 1})}, "conv2");
  m.output(conv2);
  ModelStats s = m.stats();
  CHECK(s.macs.total == 4 * 36 * 27 + 2 * 36 * 4);
  CHECK_FALSE(s.macs.approximate);
  REQUIRE(s.macs.nodes.size() == 2);
  CHECK(s.macs.nodes[1].node == "conv2");
  CHECK(s.macs.nodes[1].macs == 2 * 36 * 4);

  TestModel h;
  ir::Value* y = h.input("x", {Dim::known(1), Dim::known(3), Dim::symbolic("H"), Dim{}});
  h.output(h.node("Conv", {y, h.weight("w", {4, 3, 1, 1})}, "conv"));
  ModelStats sh = h.stats();
  CHECK(sh.macs.total == 4 * 3);  // H and W taken as 1
  CHECK(sh.macs.approximate);
  CHECK(sh.macs.notes.size() == 2);
  REQUIRE(sh.inputs.size() == 1);
  REQUIRE(sh.inputs[0].shape);
  CHECK((*sh.inputs[0].shape)[2].param == "H");
}

TEST_CASE("ConvTranspose MACs and output shape", "[analysis]") {
  TestModel m;
  // W is [C_in, C_out / group, kH, kW]; every input element is scattered to C_out/group x k outputs.
  ir::Node* up = m.node("ConvTranspose", {m.input("x", {1, 4, 5, 5}), m.weight("w", {4, 2, 3, 3})}, "up",
                        {ints("strides", {2, 2})});
  // Its output is [1, 2, 11, 11]; a 1x1 Conv after it shows that the shape was propagated.
  ir::Node* conv = m.node("Conv", {up->output(0), m.weight("w2", {1, 2, 1, 1})}, "conv");
  m.output(conv);
  ModelStats s = m.stats();
  CHECK(s.macs.byOpType["ConvTranspose"] == 4 * 25 * 2 * 9);
  CHECK(s.macs.byOpType["Conv"] == 121 * 2);

  TestModel grouped;
  grouped.output(grouped.node("ConvTranspose", {grouped.input("x", {1, 4, 5, 5}), grouped.weight("w", {4, 1, 3, 3})},
                              "up",
                              {Attribute::makeInt("group", 2), ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2}),
                               ints("output_padding", {1, 1})}));
  ModelStats sg = grouped.stats();
  CHECK(sg.macs.total == 4 * 25 * 1 * 9);
}

TEST_CASE("Gemm MACs with transA and transB", "[analysis]") {
  for (int transA : {0, 1}) {
    for (int transB : {0, 1}) {
      TestModel m;
      std::vector<int64_t> a = transA ? std::vector<int64_t>{3, 2} : std::vector<int64_t>{2, 3};
      std::vector<int64_t> b = transB ? std::vector<int64_t>{5, 3} : std::vector<int64_t>{3, 5};
      ir::Node* gemm = m.node("Gemm", {m.input("a", a), m.weight("b", b), m.weight("c", {5})}, "gemm",
                              {Attribute::makeInt("transA", transA), Attribute::makeInt("transB", transB)});
      ir::Node* next = m.node("Gemm", {gemm->output(0), m.weight("b2", {5, 7})}, "gemm2");
      m.output(next);
      ModelStats s = m.stats();
      INFO("transA " << transA << " transB " << transB);
      CHECK(s.macs.total == 2 * 3 * 5 + 2 * 5 * 7);
      CHECK(s.parameters.total == 15 + 5 + 35);
    }
  }
}

TEST_CASE("MatMul MACs: batched, broadcast, 1-D", "[analysis]") {
  auto matmul = [](std::vector<int64_t> a, std::vector<int64_t> b) {
    TestModel m;
    m.output(m.node("MatMul", {m.input("a", std::move(a)), m.input("b", std::move(b))}, "mm"));
    return m.stats().macs.total;
  };
  CHECK(matmul({2, 4, 3, 5}, {5, 6}) == 2 * 4 * 3 * 5 * 6);
  CHECK(matmul({2, 4, 3, 5}, {2, 4, 5, 6}) == 2 * 4 * 3 * 5 * 6);
  CHECK(matmul({1, 3, 5}, {2, 5, 6}) == 2 * 3 * 5 * 6);
  CHECK(matmul({5}, {5, 6}) == 30);
  CHECK(matmul({3, 5}, {5}) == 15);
}

TEST_CASE("Shapes computed in the graph are followed (Shape -> Gather -> Concat -> Reshape)", "[analysis]") {
  TestModel m;
  ir::Value* x = m.input("x", {Dim::symbolic("N"), Dim::known(8), Dim::known(2), Dim::known(2)});
  ir::Node* shape = m.node("Shape", {x}, "shape");
  ir::Node* batch =
      m.node("Gather", {shape->output(0), m.constant<int64_t>("zero", DataType::kInt64, {}, {0})}, "gather");
  ir::Node* unsq =
      m.node("Unsqueeze", {batch->output(0), m.constant<int64_t>("axes", DataType::kInt64, {1}, {0})}, "unsq");
  ir::Node* target = m.node("Concat", {unsq->output(0), m.constant<int64_t>("rest", DataType::kInt64, {1}, {-1})},
                            "cat", {Attribute::makeInt("axis", 0)});
  ir::Node* flat = m.node("Reshape", {x, target->output(0)}, "flat");
  ir::Node* mm = m.node("MatMul", {flat->output(0), m.weight("w", {32, 10})}, "fc");
  m.output(mm);
  ModelStats s = m.stats();
  CHECK(s.macs.total == 32 * 10);
  CHECK(s.macs.uncountedNodes.empty());
  CHECK(s.parameters.total == 320);  // the int64 shape pieces are not parameters
}

TEST_CASE("Parameters: weights and biases, not scales, zero points or shapes", "[analysis]") {
  TestModel m;
  ir::Value* x = m.input("x", {1, 3, 4, 4});
  ir::Node* qx = m.node("QuantizeLinear",
                        {x, m.constant<float>("xs", DataType::kFloat, {}, {0.1f}),
                         m.constant<uint8_t>("xzp", DataType::kUint8, {}, {128})},
                        "qx");
  ir::Node* dqx = m.node("DequantizeLinear", {qx->output(0), m.g.findValue("xs"), m.g.findValue("xzp")}, "dqx");
  ir::Value* w = m.constant<int8_t>("w", DataType::kInt8, {4, 3, 1, 1}, std::vector<int8_t>(12, 1));
  ir::Node* dqw = m.node("DequantizeLinear",
                         {w, m.constant<float>("ws", DataType::kFloat, {4}, {0.1f, 0.2f, 0.3f, 0.4f}),
                          m.constant<int8_t>("wzp", DataType::kInt8, {4}, {0, 0, 0, 0})},
                         "dqw", {Attribute::makeInt("axis", 0)});
  ir::Node* dqb = m.node("DequantizeLinear",
                         {m.constant<int32_t>("b", DataType::kInt32, {4}, {1, 2, 3, 4}),
                          m.constant<float>("bs", DataType::kFloat, {4}, {1, 1, 1, 1})},
                         "dqb");
  ir::Node* conv = m.node("Conv", {dqx->output(0), dqw->output(0), dqb->output(0)}, "conv");
  ir::Node* eps = m.node("Add", {conv->output(0), m.constant<float>("eps", DataType::kFloat, {}, {1e-5f})}, "eps");
  ir::Node* shift = m.node("Add", {eps->output(0), m.weight("shift", {1, 4, 1, 1})}, "shift");
  ir::Node* clip = m.node("Clip",
                          {shift->output(0), m.constant<float>("lo", DataType::kFloat, {}, {0.0f}),
                           m.constant<float>("hi", DataType::kFloat, {}, {6.0f})},
                          "clip");
  ir::Node* flat =
      m.node("Reshape", {clip->output(0), m.constant<int64_t>("shape", DataType::kInt64, {2}, {1, -1})}, "flat");
  m.output(flat);
  m.weight("unused", {100});
  ModelStats s = m.stats();
  CHECK(s.parameters.total == 12 + 4 + 4);  // int8 W, int32 bias, float shift vector
  CHECK(s.parameters.tensors == 3);
  CHECK(s.parameters.byDtype["int8"].count == 12);
  CHECK(s.parameters.byDtype["int32"].count == 4);
  CHECK(s.parameters.byDtype["int32"].bytes == 16);
  CHECK(s.parameters.byDtype["float32"].count == 4);
  CHECK(s.parameters.bytes == 12 + 16 + 16);
  CHECK(s.macs.total == 4 * 16 * 3);
}

TEST_CASE("Quantization form: none, qdq, qoperator, dynamic, weight-only", "[analysis]") {
  SECTION("none") {
    TestModel m;
    m.output(m.node("Conv", {m.input("x", {1, 3, 4, 4}), m.weight("w", {4, 3, 1, 1})}, "conv"));
    QuantStats q = m.stats().quantization;
    CHECK(q.form == QuantForm::kNone);
    CHECK(q.weightDtype().empty());
    CHECK(q.granularity().empty());
  }
  SECTION("qdq: activations quantized, per-channel int8 weights") {
    TestModel m;
    ir::Value* s = m.constant<float>("s", DataType::kFloat, {}, {0.1f});
    ir::Value* zp = m.constant<uint8_t>("zp", DataType::kUint8, {}, {128});
    ir::Node* q = m.node("QuantizeLinear", {m.input("x", {1, 3, 4, 4}), s, zp}, "q");
    ir::Node* dq = m.node("DequantizeLinear", {q->output(0), s, zp}, "dq");
    ir::Node* dqw = m.node("DequantizeLinear",
                           {m.constant<int8_t>("w", DataType::kInt8, {2, 3, 1, 1}, std::vector<int8_t>(6, 3)),
                            m.constant<float>("ws", DataType::kFloat, {2}, {0.5f, 0.25f})},
                           "dqw", {Attribute::makeInt("axis", 0)});
    ir::Node* conv = m.node("Conv", {dq->output(0), dqw->output(0)}, "conv");
    ir::Node* q2 = m.node("QuantizeLinear", {conv->output(0), s, zp}, "q2");
    m.output(q2);
    QuantStats st = m.stats().quantization;
    CHECK(st.form == QuantForm::kQdq);
    CHECK(st.quantizeLinear == 2);
    CHECK(st.dequantizeLinear == 2);
    CHECK(st.qlinearOps == 0);
    CHECK(st.weightDtype() == "int8");
    CHECK(st.granularity() == "per-channel");
  }
  SECTION("qoperator: QLinearConv with a per-tensor uint8 weight") {
    TestModel m;
    ir::Value* s = m.constant<float>("s", DataType::kFloat, {}, {0.1f});
    ir::Value* zp = m.constant<uint8_t>("zp", DataType::kUint8, {}, {128});
    ir::Value* w = m.constant<uint8_t>("w", DataType::kUint8, {2, 3, 1, 1}, {128, 128, 1, 2, 3, 4});
    ir::Node* q = m.node("QuantizeLinear", {m.input("x", {1, 3, 4, 4}), s, zp}, "q");
    ir::Node* conv = m.node("QLinearConv", {q->output(0), s, zp, w, s, zp, s, zp}, "qconv");
    ir::Node* dq = m.node("DequantizeLinear", {conv->output(0), s, zp}, "dq");
    m.output(dq);
    ModelStats st = m.stats();
    CHECK(st.quantization.form == QuantForm::kQOperator);
    CHECK(st.quantization.qlinearOps == 1);
    CHECK(st.quantization.weightDtype() == "uint8");
    CHECK(st.quantization.granularity() == "per-tensor");
    CHECK(st.macs.byOpType["QLinearConv"] == 2 * 16 * 3);
    CHECK(st.parameters.total == 6);
    // Two elements equal the zero point 128: zero in real terms.
    CHECK(st.sparsity.weightElements == 6);
    CHECK(st.sparsity.zeroElements == 2);
  }
  SECTION("dynamic: DynamicQuantizeLinear feeding MatMulInteger") {
    TestModel m;
    ir::Node* dql = m.g.addNode("DynamicQuantizeLinear", {m.input("x", {2, 8})}, {"xq", "xs", "xzp"}, "dql");
    ir::Value* w = m.constant<int8_t>("w", DataType::kInt8, {8, 4}, std::vector<int8_t>(32, 1));
    ir::Node* mm = m.node("MatMulInteger", {dql->output(0), w, dql->output(2)}, "mmi");
    m.output(mm);
    ModelStats st = m.stats();
    CHECK(st.quantization.form == QuantForm::kDynamic);
    CHECK(st.quantization.dynamicQuantizeLinear == 1);
    CHECK(st.quantization.weightDtype() == "int8");
    CHECK(st.macs.byOpType["MatMulInteger"] == 2 * 8 * 4);
    CHECK(st.parameters.total == 32);
  }
  SECTION("weight-only: DequantizeLinear of weights, float activations") {
    TestModel m;
    ir::Node* dqw = m.node("DequantizeLinear",
                           {m.constant<int8_t>("w", DataType::kInt8, {8, 4}, std::vector<int8_t>(32, 1)),
                            m.constant<float>("ws", DataType::kFloat, {}, {0.5f})},
                           "dqw");
    ir::Node* mm = m.node("MatMul", {m.input("x", {2, 8}), dqw->output(0)}, "mm");
    m.output(mm);
    ModelStats st = m.stats();
    CHECK(st.quantization.form == QuantForm::kWeightOnly);
    CHECK(st.quantization.quantizeLinear == 0);
    CHECK(st.quantization.weightDtype() == "int8");
    CHECK(st.quantization.granularity() == "per-tensor");
    CHECK(st.parameters.total == 32);
  }
}

TEST_CASE("Sparsity counts exact zeros per layer, shared weights once", "[analysis]") {
  TestModel m;
  ir::Value* w = m.weight("w", {4, 4, 1, 1}, /*zeros=*/4);
  ir::Node* a = m.node("Conv", {m.input("x", {1, 4, 2, 2}), w}, "a");
  ir::Node* b = m.node("Conv", {a->output(0), w}, "b");  // the same weight again
  ir::Node* fc = m.node("Gemm", {m.input("f", {1, 10}), m.weight("fcw", {10, 10}, /*zeros=*/50)}, "fc");
  m.output(b);
  m.output(fc);
  SparsityStats s = m.stats().sparsity;
  REQUIRE(s.layers.size() == 3);
  CHECK(s.layers[0].node == "a");
  CHECK(s.layers[0].zeros == 4);
  CHECK(s.layers[1].weight == "w");
  CHECK(s.layers[2].zeros == 50);
  CHECK(s.weightElements == 16 + 100);
  CHECK(s.zeroElements == 54);
  CHECK(s.fraction() == Approx(54.0 / 116.0));
}

TEST_CASE("Sparsity of per-channel quantized weights uses each channel's zero point", "[analysis]") {
  TestModel m;
  // Channel 0 zero point 0, channel 1 zero point 5: elements equal to it are zero.
  ir::Value* w = m.constant<int8_t>("w", DataType::kInt8, {2, 3, 1, 1}, {0, 0, 5, 5, 5, 0});
  ir::Node* dqw = m.node("DequantizeLinear",
                         {w, m.constant<float>("ws", DataType::kFloat, {2}, {0.5f, 0.5f}),
                          m.constant<int8_t>("wzp", DataType::kInt8, {2}, {0, 5})},
                         "dqw", {Attribute::makeInt("axis", 0)});
  m.output(m.node("Conv", {m.input("x", {1, 3, 2, 2}), dqw->output(0)}, "conv"));
  SparsityStats s = m.stats().sparsity;
  CHECK(s.weightElements == 6);
  CHECK(s.zeroElements == 4);
}

TEST_CASE("Op histogram qualifies non-default domains and sorts by count", "[analysis]") {
  TestModel m;
  ir::Value* x = m.input("x", {1, 4});
  ir::Node* r1 = m.node("Relu", {x}, "r1");
  ir::Node* r2 = m.node("Relu", {r1->output(0)}, "r2");
  ir::Node* c = m.node("Gelu", {r2->output(0)}, "gelu", {}, "com.microsoft");
  m.output(c);
  m.model.opsetImports.push_back({"com.microsoft", 1});
  ModelStats s = m.stats();
  CHECK(s.nodeCount == 3);
  REQUIRE(s.opHistogram.size() == 2);
  CHECK(s.opHistogram[0] == std::make_pair(std::string("Relu"), int64_t{2}));
  CHECK(s.opHistogram[1] == std::make_pair(std::string("com.microsoft.Gelu"), int64_t{1}));
  CHECK(s.opsets["ai.onnx"] == 13);
  CHECK(s.opsets["com.microsoft"] == 1);
}

TEST_CASE("Shapes of an opset newer than libonnx knows come from whittle's own rules", "[analysis]") {
  TestModel m(/*opset=*/18);
  ir::Value* x = m.input("x", {Dim::symbolic("N"), Dim::known(8), Dim::known(8), Dim::known(3)});
  ir::Node* t = m.node("Transpose", {x}, "nhwc_to_nchw", {ints("perm", {0, 3, 1, 2})});
  ir::Node* conv = m.node("Conv", {t->output(0), m.weight("w", {16, 3, 3, 3})}, "conv",
                          {ints("strides", {2, 2}), Attribute::makeString("auto_pad", "SAME_UPPER")});
  ir::Node* mean = m.node("ReduceMean", {conv->output(0), m.constant<int64_t>("axes", DataType::kInt64, {2}, {2, 3})},
                          "gap", {Attribute::makeInt("keepdims", 0)});
  ir::Node* fc = m.node("MatMul", {mean->output(0), m.weight("fc", {16, 10})}, "fc");
  m.output(fc);
  StatsOptions options;
  options.valueShapes = true;
  auto s = computeStats(m.model, "", options);
  REQUIRE(s.isOk());
  CHECK(s->macs.byOpType["Conv"] == 16 * 16 * 27);
  CHECK(s->macs.byOpType["MatMul"] == 160);
  REQUIRE(s->valueShapes.size() == 5);
  CHECK(s->valueShapes[3].name == "gap_out");
  CHECK(s->valueShapes[3].dims == std::vector<int64_t>{1, 16});
}

TEST_CASE("Hostile shapes leave a node uncounted instead of overflowing", "[analysis]") {
  TestModel m;
  int64_t huge = int64_t{1} << 40;
  ir::Node* conv = m.node("Conv", {m.input("x", {1, 3, huge, huge}), m.weight("w", {4, 3, 3, 3})}, "conv");
  // Duplicate and out-of-range axes, a bad perm: no shape, no crash.
  ir::Node* unsq = m.node("Unsqueeze", {conv->output(0)}, "unsq", {ints("axes", {0, 0})});
  ir::Node* t = m.node("Transpose", {unsq->output(0)}, "t", {ints("perm", {7, 0, 1, 2})});
  m.output(t);
  ModelStats s = m.stats();
  CHECK(s.macs.total == 0);
  CHECK(s.macs.approximate);
  CHECK(s.macs.uncountedNodes == std::vector<std::string>{"conv"});
}

// ---------------------------------------------------------------- the shared models

struct ModelFigures {
  const char* file;
  int64_t parameters;
  int64_t macs;
  QuantForm form;
};

// Verified with tests/analysis/reference_stats.py (onnx 1.23, independent of this code).
const ModelFigures kSharedModels[] = {
    {"mlperftiny_ic_resnet8.onnx", 77'706, 12'501'632, QuantForm::kNone},
    {"mlperftiny_kws_dscnn_float32io_int8w.onnx", 22'604, 2'656'768, QuantForm::kWeightOnly},
    {"mlperftiny_kws_dscnn_int8_qdq.onnx", 22'604, 2'656'768, QuantForm::kQdq},
    {"mlperftiny_vww_96_float.onnx", 210'850, 7'489'664, QuantForm::kNone},
    {"mnist-8.onnx", 5'994, 786'560, QuantForm::kNone},
    {"mobilenetv2-12-int8.onnx", 3'487'816, 300'774'272, QuantForm::kQOperator},
    {"mobilenetv2-12-rebuilt-fp32.onnx", 3'487'816, 300'774'272, QuantForm::kNone},
    {"retinaface_mbnet0.25.onnx", 423'264, 419'824, QuantForm::kNone},  // H, W taken as 1
    {"squeezenet1.1-fp16.onnx", 1'235'496, 349'151'936, QuantForm::kNone},
    {"squeezenet1.1.onnx", 1'235'496, 349'151'936, QuantForm::kNone},
    {"super_resolution_subpixel_cnn_x3.onnx", 59'657, 2'984'869'888, QuantForm::kNone},
    {"ultraface_version-RFB-320.onnx", 307'620, 100'418'560, QuantForm::kNone},
    {"vittrack_vitTracker.onnx", 187'813, 84'571'136, QuantForm::kNone},
    {"yolo-fastestv2_352.onnx", 238'847, 106'382'232, QuantForm::kNone},
};

ModelStats sharedModelStats(const std::string& path) {
  auto model = onnx_io::load(path);
  REQUIRE(model.isOk());
  auto stats = computeStats(*model, path);
  REQUIRE(stats.isOk());
  return std::move(stats).value();
}

TEST_CASE("squeezenet1.1: 1,235,496 parameters and 349.2 M MACs", "[analysis]") {
  auto path = testing::sharedPath("models/squeezenet1.1.onnx");
  if (!path) return;
  ModelStats s = sharedModelStats(*path);
  CHECK(s.parameters.total == 1'235'496);
  CHECK(s.parameters.byDtype["float32"].bytes == 4 * 1'235'496);
  CHECK(s.macs.total == 349'151'936);
  CHECK_FALSE(s.macs.approximate);
  CHECK(s.macs.byOpType.size() == 1);
  CHECK(s.macs.nodes.size() == 26);
  CHECK(s.nodeCount == 66);
  CHECK(s.irVersion == 3);
  REQUIRE(s.inputs.size() == 1);  // the initializers listed as inputs are not inputs
  CHECK(s.inputs[0].name == "data_0");
  CHECK(s.file.sizeBytes == 4'955'170);
  CHECK(s.quantization.form == QuantForm::kNone);
}

TEST_CASE("Every shared model: parameters, MACs and quantization form match the Python reference", "[analysis]") {
  for (const ModelFigures& m : kSharedModels) {
    auto path = testing::sharedPath(std::string("models/") + m.file);
    if (!path) return;
    INFO(m.file);
    ModelStats s = sharedModelStats(*path);
    CHECK(s.parameters.total == m.parameters);
    CHECK(s.macs.total == m.macs);
    CHECK(s.macs.uncountedNodes.empty());
    CHECK(s.quantization.form == m.form);
  }
}

TEST_CASE("A quantized model has its float original's parameter count", "[analysis]") {
  auto int8 = testing::sharedPath("models/mobilenetv2-12-int8.onnx");
  auto fp32 = testing::sharedPath("models/mobilenetv2-12-rebuilt-fp32.onnx");
  if (!int8 || !fp32) return;
  ModelStats q = sharedModelStats(*int8);
  ModelStats f = sharedModelStats(*fp32);
  CHECK(q.parameters.total == f.parameters.total);
  CHECK(q.parameters.byDtype["int8"].count == 3'469'760);  // conv and classifier weights
  CHECK(q.parameters.byDtype["int32"].count == 17'056);    // conv biases
  CHECK(q.macs.total == f.macs.total);
  CHECK(q.quantization.weightDtype() == "int8");
  CHECK(q.quantization.granularity() == "per-channel");
  // Quantized zeros (equal to the zero point) are the fp32 model's zeros.
  CHECK(q.sparsity.zeroElements == f.sparsity.zeroElements);
  CHECK(q.sparsity.zeroElements == 35'230);
}

}  // namespace
}  // namespace whittle::analysis
