// Conv and ConvTranspose on the CPU runtime against a naive convolution in double, over one
// shape list: channel counts at, just below and just above 16 and 64 (oneDNN's vector and
// block sizes), 1x1 / 3x3 / strided / padded / asymmetric / dilated / grouped / depthwise,
// 1-D and 3-D, for float32 (1 and 2 threads), float16, bfloat16 and float64.
#include <catch2/catch.hpp>

#include "kernels/cpu/conv_test_util.h"
#include "support/lowering_check.h"

using namespace whittle;
using whittle::testing::GraphBuilder;
using whittle::testing::NaiveConv;

namespace {

struct ConvCase {
  std::vector<int64_t> x;
  int64_t m;
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> pads;  ///< begin..., end...
  std::vector<int64_t> dilations;
  int64_t group = 1;
  bool bias = true;
};

/// The shared shape list.
const std::vector<ConvCase> kConvCases = {
    {{1, 1, 5, 7}, 1, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 3, 16, 16}, 16, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
    {{2, 15, 9, 9}, 17, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 1, false},
    {{1, 16, 8, 8}, 16, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 17, 7, 7}, 15, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 63, 6, 6}, 65, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}},
    {{1, 64, 5, 5}, 64, {3, 3}, {1, 1}, {0, 1, 1, 0}, {1, 1}},
    {{1, 65, 4, 4}, 63, {1, 1}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, false},
    {{1, 32, 9, 9}, 32, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 32},
    {{1, 24, 10, 10}, 24, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 24},
    {{1, 8, 6, 6}, 12, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 4},
    {{1, 4, 11, 11}, 6, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}},
    {{1, 6, 7, 9}, 5, {2, 4}, {1, 3}, {1, 0, 0, 2}, {1, 1}},
    // Along H alone (W = 1): oneDNN is asked for the same memory along W (conv.cpp dnnlGeometry).
    {{1, 12, 20, 1}, 16, {5, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{2, 8, 17, 1}, 8, {3, 1}, {2, 1}, {1, 0, 2, 0}, {2, 1}, 4},
    {{2, 5, 20}, 7, {5}, {2}, {1, 2}, {1}},
    {{1, 16, 33}, 16, {3}, {1}, {1, 1}, {1}, 16},
    {{1, 3, 5, 6, 7}, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, {1, 1, 1}},
    {{1, 17, 4, 4, 4}, 16, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {1, 1, 1}},
    // One input channel, a long kernel along W: the window GEMM (overlapping windows with
    // padding at both ends, 1-D with stride == kernel and no bias, gaps between windows, a
    // padded row shorter than the input); then a dilated one, which stays on oneDNN.
    {{2, 1, 1, 500}, 16, {1, 40}, {1, 37}, {0, 3, 0, 9}, {1, 1}},
    {{1, 1, 300}, 5, {64}, {64}, {0, 0}, {1}, 1, false},
    {{1, 1, 1, 100}, 3, {1, 32}, {1, 50}, {0, 20, 0, 0}, {1, 1}},
    {{1, 1, 1, 120}, 4, {1, 32}, {1, 4}, {0, 0, 0, 0}, {1, 2}},
    // Windows overlapping by most of their taps (more than 4 chunks of `stride`): copied out a
    // block of rows at a time (several blocks, the last one partial; one output channel).
    {{2, 1, 1, 2000}, 1, {1, 256}, {1, 2}, {0, 5, 0, 7}, {1, 1}},
    {{1, 1, 700}, 3, {40}, {3}, {2, 2}, {1}, 1, false},
};

NaiveConv naiveOf(const ConvCase& c) {
  NaiveConv n;
  n.x = c.x;
  n.w = {c.m, c.x[1] / c.group};
  n.w.insert(n.w.end(), c.kernel.begin(), c.kernel.end());
  size_t s = c.kernel.size();
  n.strides = c.strides;
  n.dilations = c.dilations;
  n.padBegin.assign(c.pads.begin(), c.pads.begin() + static_cast<std::ptrdiff_t>(s));
  n.padEnd.assign(c.pads.begin() + static_cast<std::ptrdiff_t>(s), c.pads.end());
  n.group = c.group;
  return n;
}

struct BuiltConv {
  ir::Model model;
  ir::Tensor x, w, b;
};

/// A one-node Conv model for `c` in `dtype`; W and B are initializers.
BuiltConv buildConv(const ConvCase& c, ir::DataType dtype, uint64_t seed, std::vector<ir::Attribute> extra = {}) {
  GraphBuilder gb(seed);
  NaiveConv n = naiveOf(c);
  BuiltConv out;
  out.x = gb.randomTensor(dtype, c.x);
  out.w = gb.randomTensor(dtype, n.w, -0.5, 0.5);
  out.b = gb.randomTensor(dtype, {c.m});
  ir::Value* x = gb.input("x", dtype, c.x);
  ir::Value* w = gb.constant("w", out.w);
  ir::Value* b = c.bias ? gb.constant("b", out.b) : nullptr;
  std::vector<ir::Attribute> attrs = {
      ir::Attribute::makeInts("kernel_shape", c.kernel), ir::Attribute::makeInts("strides", c.strides),
      ir::Attribute::makeInts("pads", c.pads), ir::Attribute::makeInts("dilations", c.dilations),
      ir::Attribute::makeInt("group", c.group)};
  for (auto& a : extra) attrs.push_back(a);
  std::vector<ir::Value*> inputs = {x, w};
  if (b != nullptr) inputs.push_back(b);
  gb.output(gb.node("Conv", inputs, attrs, "conv"));
  out.model = gb.build(17);
  return out;
}

std::vector<double> expectedConv(const ConvCase& c, const BuiltConv& built) {
  std::vector<double> b = whittle::testing::tensorValues(built.b);
  return whittle::testing::naiveConvRun(naiveOf(c), whittle::testing::tensorValues(built.x),
                                        whittle::testing::tensorValues(built.w), c.bias ? &b : nullptr);
}

}  // namespace

TEST_CASE("Conv float32 matches a naive convolution over the shape list", "[kernels][conv]") {
  uint64_t seed = 1;
  for (const ConvCase& c : kConvCases) {
    for (int threads : {1, 2}) {
      BuiltConv built = buildConv(c, ir::DataType::kFloat, seed++);
      INFO("x " << c.x.size() << "-d, C " << c.x[1] << ", M " << c.m << ", group " << c.group << ", threads "
                << threads);
      auto y = whittle::testing::runOutputs(built.model, {{"x", built.x}}, threads);
      REQUIRE(y[0].dims() == whittle::testing::naiveConvOutput(naiveOf(c)));
      whittle::testing::checkClose(y[0], expectedConv(c, built), 1e-4, 1e-4);
    }
  }
}

TEST_CASE("Conv computes float16 widened, bfloat16 natively and float64 exactly", "[kernels][conv]") {
  const ConvCase& depthwise = kConvCases[8];
  const ConvCase& plain = kConvCases[5];
  for (const ConvCase* c : {&plain, &depthwise}) {
    BuiltConv h = buildConv(*c, ir::DataType::kFloat16, 11);
    auto yh = whittle::testing::runOutputs(h.model, {{"x", h.x}});
    CHECK(yh[0].dtype() == ir::DataType::kFloat16);
    whittle::testing::checkClose(yh[0], expectedConv(*c, h), 2e-3, 5e-3);
    BuiltConv bf = buildConv(*c, ir::DataType::kBFloat16, 12);
    auto yb = whittle::testing::runOutputs(bf.model, {{"x", bf.x}});
    CHECK(yb[0].dtype() == ir::DataType::kBFloat16);
    whittle::testing::checkClose(yb[0], expectedConv(*c, bf), 1e-2, 3e-2);
    BuiltConv d = buildConv(*c, ir::DataType::kDouble, 13);
    auto yd = whittle::testing::runOutputs(d.model, {{"x", d.x}});
    CHECK(yd[0].dtype() == ir::DataType::kDouble);
    whittle::testing::checkClose(yd[0], expectedConv(*c, d), 1e-12, 1e-12);
  }
}

TEST_CASE("Conv auto_pad gives the ONNX output shapes and pads", "[kernels][conv]") {
  struct Case {
    const char* autoPad;
    int64_t in, k, s;
    int64_t out, padBegin, padEnd;
  };
  // SAME: out = ceil(in / s); total = (out - 1) * s + k - in; UPPER puts the odd one at the end.
  const std::vector<Case> cases = {{"SAME_UPPER", 7, 3, 2, 4, 1, 1}, {"SAME_UPPER", 8, 4, 2, 4, 1, 1},
                                   {"SAME_UPPER", 6, 2, 1, 6, 0, 1}, {"SAME_LOWER", 6, 2, 1, 6, 1, 0},
                                   {"SAME_LOWER", 8, 4, 3, 3, 1, 1}, {"VALID", 7, 3, 2, 3, 0, 0},
                                   {"NOTSET", 7, 3, 2, 3, 0, 0}};
  for (const Case& c : cases) {
    INFO(c.autoPad << " in " << c.in << " k " << c.k << " s " << c.s);
    ConvCase cc{{1, 2, c.in, c.in}, 3, {c.k, c.k}, {c.s, c.s}, {c.padBegin, c.padBegin, c.padEnd, c.padEnd}, {1, 1}};
    GraphBuilder gb(5);
    ir::Tensor xt = gb.randomTensor(ir::DataType::kFloat, cc.x);
    ir::Tensor wt = gb.randomTensor(ir::DataType::kFloat, {3, 2, c.k, c.k});
    ir::Value* x = gb.input("x", ir::DataType::kFloat, cc.x);
    gb.output(
        gb.node("Conv", {x, gb.constant("w", wt)},
                {ir::Attribute::makeString("auto_pad", c.autoPad), ir::Attribute::makeInts("strides", cc.strides)}));
    auto y = whittle::testing::runOutputs(gb.build(17), {{"x", xt}});
    REQUIRE(y[0].dims() == std::vector<int64_t>{1, 3, c.out, c.out});
    whittle::testing::checkClose(y[0],
                                 whittle::testing::naiveConvRun(naiveOf(cc), whittle::testing::tensorValues(xt),
                                                                whittle::testing::tensorValues(wt), nullptr),
                                 1e-4, 1e-5);
  }
}

TEST_CASE("Conv takes weights computed at run time and changes of input shape", "[kernels][conv]") {
  GraphBuilder gb(21);
  ir::Value* x =
      gb.symbolicInput("x", ir::DataType::kFloat,
                       {ir::Dim::symbolic("n"), ir::Dim::known(8), ir::Dim::symbolic("h"), ir::Dim::symbolic("w")});
  ir::Value* w = gb.input("w", ir::DataType::kFloat, {16, 8, 3, 3});
  gb.output(gb.node("Conv", {x, w}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}));
  ir::Model model = gb.build(17);
  runtime::SessionOptions options;
  auto session = runtime::Session::create(model, options);
  REQUIRE(session.isOk());
  for (std::vector<int64_t> dims : {std::vector<int64_t>{1, 8, 9, 9}, {2, 8, 5, 17}, {1, 8, 9, 9}}) {
    ir::Tensor xt = gb.randomTensor(ir::DataType::kFloat, dims);
    ir::Tensor wt = gb.randomTensor(ir::DataType::kFloat, {16, 8, 3, 3});
    auto y = (*session)->run({{"x", xt}, {"w", wt}});
    REQUIRE(y.isOk());
    NaiveConv n{dims, {16, 8, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, {}};
    whittle::testing::checkClose((*y)[0].second,
                                 whittle::testing::naiveConvRun(n, whittle::testing::tensorValues(xt),
                                                                whittle::testing::tensorValues(wt), nullptr),
                                 1e-4, 1e-4);
  }
}

TEST_CASE("Conv rejects malformed inputs with a message naming the node", "[kernels][conv]") {
  GraphBuilder gb(3);
  ir::Value* x = gb.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  gb.output(gb.node("Conv", {x, gb.weight("w", {4, 2, 3, 3})}, {}, "bad_conv"));
  runtime::SessionOptions options;
  auto session = runtime::Session::create(gb.build(17), options);
  std::string message;
  if (session.isOk()) {
    auto y = (*session)->run({{"x", gb.randomTensor(ir::DataType::kFloat, {1, 3, 8, 8})}});
    REQUIRE_FALSE(y.isOk());
    message = y.status().message();
  } else {
    message = session.status().message();
  }
  CHECK(message.find("bad_conv") != std::string::npos);
  CHECK(message.find("channels") != std::string::npos);

  GraphBuilder gi(4);
  ir::Value* xi = gi.input("x", ir::DataType::kInt32, {1, 3, 8, 8});
  gi.output(gi.node("Conv", {xi, gi.weight("w", {4, 3, 3, 3}, ir::DataType::kInt32)}, {}, "int_conv"));
  auto s2 = runtime::Session::create(gi.build(17), options);
  REQUIRE_FALSE(s2.isOk());
  CHECK(s2.status().code() == StatusCode::kUnimplemented);
  CHECK(s2.status().message().find("int_conv") != std::string::npos);
}

TEST_CASE("The window GEMM writes channels last when a Conv reads its output", "[kernels][conv]") {
  // The lowering keeps the value between the two Convs channels last: the first Conv's
  // window GEMM then writes [N, 1, W, M]; the unlowered graph writes [N, M, 1, W]. Stride 16:
  // three chunks of taps; stride 4: the windows copied out. The lowered graph's constant W
  // runs as matmuls with W^T packed once (one block, or several with a shorter last one for
  // 256 taps at stride 2 over 2000 samples), with and without a bias; the unlowered graph
  // runs dnnl_sgemm over chunks of taps.
  struct Case {
    int64_t stride, taps, len;
    bool bias;
  };
  for (const Case& c :
       {Case{16, 48, 400, true}, Case{4, 48, 400, true}, Case{441, 475, 4000, false}, Case{2, 256, 2000, true}}) {
    INFO("stride " << c.stride << " taps " << c.taps << " bias " << c.bias);
    GraphBuilder gb(71);
    ir::Value* x = gb.input("x", ir::DataType::kFloat, {2, 1, 1, c.len});
    std::vector<ir::Value*> inputs = {x, gb.weight("w1", {8, 1, 1, c.taps})};
    if (c.bias) inputs.push_back(gb.weight("b1", {8}));
    ir::Value* a = gb.node(
        "Conv", inputs,
        {ir::Attribute::makeInts("strides", {1, c.stride}), ir::Attribute::makeInts("pads", {0, 8, 0, 8})}, "window");
    gb.output(gb.node("Conv", {a, gb.weight("w2", {4, 8, 1, 3})}, {}, "next"));
    // Long windows sum hundreds of products in another order (blocked matmul vs sgemm chunks),
    // and the next Conv sums 24 of them with cancellation: 1e-4 for those.
    whittle::testing::checkSameAsUnlowered(
        gb.build(17), {{"x", gb.randomTensor(ir::DataType::kFloat, {2, 1, 1, c.len})}}, c.taps > 100 ? 1e-4 : 1e-5);
  }
}

TEST_CASE("ConvTranspose matches a naive scatter", "[kernels][conv]") {
  struct Case {
    std::vector<int64_t> x;  // [N, C, D...]
    int64_t mPerGroup, group;
    std::vector<int64_t> kernel, strides, dilations, pads, outputPadding, outputShape;
    std::vector<int64_t> expectedSpatial;
    std::vector<int64_t> padBegin;  // as the naive scatter takes it
  };
  const std::vector<Case> cases = {
      {{1, 1, 3, 3}, 2, 1, {3, 3}, {1, 1}, {1, 1}, {}, {}, {}, {5, 5}, {0, 0}},
      {{2, 16, 5, 5}, 16, 1, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {}, {}, {9, 9}, {1, 1}},
      {{1, 3, 4, 5}, 2, 1, {3, 3}, {3, 2}, {1, 1}, {}, {1, 1}, {}, {13, 12}, {0, 0}},
      {{1, 4, 3, 3}, 3, 2, {2, 2}, {2, 2}, {2, 2}, {0, 1, 1, 0}, {}, {}, {6, 6}, {0, 1}},
      {{1, 1, 3, 3}, 2, 1, {3, 3}, {3, 2}, {1, 1}, {}, {}, {10, 8}, {10, 8}, {0, 0}},
      {{1, 17, 6}, 5, 1, {4}, {2}, {1}, {1, 2}, {}, {}, {11}, {1}},
      {{1, 2, 3, 3, 3}, 3, 1, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {}, {}, {}, {6, 6, 6}, {0, 0, 0}},
      // kernel == stride, no padding: the GEMM-and-scatter path (one block, several blocks
      // with a partial last one, a non-square kernel, one output channel; 2 wide interleaves
      // two rows of Z, 3 wide takes the general loop)
      {{2, 16, 5, 7}, 3, 1, {2, 2}, {2, 2}, {1, 1}, {}, {}, {}, {10, 14}, {0, 0}},
      {{1, 4, 3, 5}, 2, 1, {2, 3}, {2, 3}, {1, 1}, {}, {}, {}, {6, 15}, {0, 0}},
      {{1, 8, 40, 64}, 16, 1, {2, 2}, {2, 2}, {1, 1}, {}, {}, {}, {80, 128}, {0, 0}},
      {{1, 5, 4, 3}, 1, 1, {3, 2}, {3, 2}, {1, 1}, {}, {}, {}, {12, 6}, {0, 0}},
      // kernel == stride but with end padding or output_padding: not that path
      {{1, 3, 4, 4}, 2, 1, {2, 2}, {2, 2}, {1, 1}, {0, 0, 1, 1}, {}, {}, {7, 7}, {0, 0}},
      {{1, 3, 4, 4}, 2, 1, {2, 2}, {2, 2}, {1, 1}, {}, {1, 1}, {}, {9, 9}, {0, 0}},
  };
  uint64_t seed = 40;
  for (const Case& c : cases) {
    for (int threads : {1, 2}) {
      GraphBuilder gb(seed++);
      std::vector<int64_t> wDims = {c.x[1], c.mPerGroup};
      wDims.insert(wDims.end(), c.kernel.begin(), c.kernel.end());
      ir::Tensor xt = gb.randomTensor(ir::DataType::kFloat, c.x);
      ir::Tensor wt = gb.randomTensor(ir::DataType::kFloat, wDims);
      ir::Tensor bt = gb.randomTensor(ir::DataType::kFloat, {c.mPerGroup * c.group});
      ir::Value* x = gb.input("x", ir::DataType::kFloat, c.x);
      std::vector<ir::Attribute> attrs = {ir::Attribute::makeInts("strides", c.strides),
                                          ir::Attribute::makeInts("dilations", c.dilations),
                                          ir::Attribute::makeInt("group", c.group)};
      if (!c.pads.empty()) attrs.push_back(ir::Attribute::makeInts("pads", c.pads));
      if (!c.outputPadding.empty()) attrs.push_back(ir::Attribute::makeInts("output_padding", c.outputPadding));
      if (!c.outputShape.empty()) attrs.push_back(ir::Attribute::makeInts("output_shape", c.outputShape));
      gb.output(gb.node("ConvTranspose", {x, gb.constant("w", wt), gb.constant("b", bt)}, attrs));
      auto y = whittle::testing::runOutputs(gb.build(17), {{"x", xt}}, threads);
      std::vector<int64_t> expectedDims = {c.x[0], c.mPerGroup * c.group};
      expectedDims.insert(expectedDims.end(), c.expectedSpatial.begin(), c.expectedSpatial.end());
      REQUIRE(y[0].dims() == expectedDims);
      NaiveConv n;
      n.x = c.x;
      n.w = wDims;
      n.strides = c.strides;
      n.dilations = c.dilations;
      n.padBegin = c.padBegin;
      n.group = c.group;
      std::vector<double> b = whittle::testing::tensorValues(bt);
      whittle::testing::checkClose(
          y[0],
          whittle::testing::naiveConvTransposeRun(n, c.expectedSpatial, whittle::testing::tensorValues(xt),
                                                  whittle::testing::tensorValues(wt), &b),
          1e-4, 1e-4);
    }
  }
}

TEST_CASE("A residual sum is written over its operand where the operand dies at the FusedConv", "[kernels][conv]") {
  // ResNet blocks: the block input z is read by the block's first Conv and by the residual Add
  // of its last, so the lowering does not mark the Add in place (z has two readers); the plan
  // knows the last Conv reads it last and the kernel takes z's buffer for its output. With a
  // reader of z after the Add (a second block reading z again), z must survive the Add.
  for (bool laterReader : {false, true}) {
    INFO("a reader after the Add: " << laterReader);
    GraphBuilder gb(72);
    auto conv = [&](ir::Value* x, int64_t cin, int64_t cout, int64_t k, const std::string& name) {
      const int64_t p = k / 2;
      return gb.node("Conv", {x, gb.weight(name + "_w", {cout, cin, k, k}), gb.weight(name + "_b", {cout})},
                     {ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
    };
    ir::Value* x = gb.input("x", ir::DataType::kFloat, {1, 8, 9, 9});
    ir::Value* z = gb.node("Relu", {conv(x, 8, 32, 3, "stem")}, {}, "z");
    ir::Value* a = gb.node("Relu", {conv(z, 32, 16, 1, "a")}, {}, "a_relu");
    ir::Value* y = gb.node("Relu", {gb.node("Add", {conv(a, 16, 32, 3, "b"), z}, {}, "add")}, {}, "y");
    if (laterReader) y = gb.node("Add", {conv(y, 32, 32, 1, "c"), z}, {}, "again");
    gb.output(gb.node("GlobalAveragePool", {y}, {}, "gap"));
    whittle::testing::checkSameAsUnlowered(gb.build(17), {{"x", gb.randomTensor(ir::DataType::kFloat, {1, 8, 9, 9})}});
  }
}
