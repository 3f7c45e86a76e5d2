#include "whittle/runtime/session.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "support/graph_builder.h"
#include "whittle/runtime/buffer_pool.h"
#include "whittle/runtime/kernel.h"

namespace whittle {
namespace {

ir::Tensor floats(std::vector<int64_t> dims, float start) {
  ir::Tensor t(ir::DataType::kFloat, std::move(dims));
  float* p = t.mutableData<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = start + 0.25f * static_cast<float>(i % 17) - 2.0f;
  return t;
}

runtime::Value pooled(runtime::BufferPool& pool, const ir::Tensor& values) {
  ir::Tensor t(values.dtype(), values.dims(), pool.acquire(values.byteSize()));
  std::memcpy(t.buffer()->mutableData(), values.rawData(), values.byteSize());
  return runtime::Value(std::move(t));
}

TEST_CASE("allocateOutputOver takes an input's bytes only where the input dies here and nothing else holds them",
          "[runtime]") {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 8});
  b.output(b.node("Relu", {x}));
  ir::Model m = b.build(17);
  const ir::Node& relu = *m.graph->nodes().front();
  auto context = runtime::cpuBackend().createContext(1);
  REQUIRE(context.isOk());
  runtime::BufferPool pool;
  runtime::Value in = pooled(pool, floats({4, 8}, 0.0f));
  const std::byte* inBytes = in.tensor().rawData();
  std::vector<runtime::Value> outs(1);
  const std::vector<char> dies{1}, lives{0};

  SECTION("the plan's last reader of a pooled buffer writes over it") {
    runtime::KernelContext ctx(relu, {&in}, outs, pool, **context);
    ctx.setDyingInputs(&dies);
    CHECK(ctx.inputDiesHere(0));
    CHECK(ctx.allocateOutputOver(0, 0, ir::DataType::kFloat, {4, 8}) == inBytes);
    CHECK(outs[0].tensor().rawData() == inBytes);
    CHECK(outs[0].tensor().dims() == std::vector<int64_t>{4, 8});
    // The output now holds the bytes too: a second output over them would not be alone.
    CHECK(ctx.allocateOutputOver(0, 0, ir::DataType::kFloat, {4, 8}) != inBytes);
    outs[0] = runtime::Value();
    // Int32 has float's size: still element over element.
    CHECK(ctx.allocateOutputOver(0, 0, ir::DataType::kInt32, {32}) == inBytes);
  }
  SECTION("a later reader, no plan, another holder, another size or a read-only buffer: a new buffer") {
    auto fresh = [&](const std::vector<char>* dying, ir::DataType dtype, std::vector<int64_t> dims) {
      runtime::KernelContext ctx(relu, {&in}, outs, pool, **context);
      ctx.setDyingInputs(dying);
      std::byte* p = ctx.allocateOutputOver(0, 0, dtype, std::move(dims));
      return p != nullptr && p != inBytes && outs[0].tensor().rawData() == p;
    };
    CHECK(fresh(&lives, ir::DataType::kFloat, {4, 8}));
    CHECK(fresh(nullptr, ir::DataType::kFloat, {4, 8}));
    CHECK(fresh(&dies, ir::DataType::kBool, {4, 8}));     // a bool over a float would run ahead of the reads
    CHECK(fresh(&dies, ir::DataType::kDouble, {4, 8}));   // twice the bytes
    CHECK(fresh(&dies, ir::DataType::kFloat, {4, 4}));    // fewer elements
    {
      ir::Tensor view = in.tensor();  // a Reshape's view, a caller's copy: a second holder
      CHECK(fresh(&dies, ir::DataType::kFloat, {4, 8}));
    }
    static const float constant[32] = {};
    runtime::Value readOnly(ir::Tensor(ir::DataType::kFloat, {4, 8}, ir::Buffer::view(constant, sizeof constant, nullptr)));
    runtime::KernelContext ctx(relu, {&readOnly}, outs, pool, **context);
    ctx.setDyingInputs(&dies);
    CHECK_FALSE(ctx.inputDiesHere(0));
  }
}

// The session's plan decides which inputs die where; the outputs must be those of a run where
// every node writes a buffer of its own.
TEST_CASE("elementwise nodes write over inputs nobody reads later, and only those", "[runtime]") {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3, 40, 40});
  ir::Value* neg = b.node("Neg", {x});           // x is a feed: never written over
  ir::Value* relu = b.node("Relu", {neg});       // neg dies here: over it
  ir::Value* sig = b.node("Sigmoid", {relu});    // relu is read again below: not over it
  ir::Value* sum = b.node("Add", {sig, relu});   // both die here: over sig
  ir::Value* sq = b.node("Mul", {sum, sum});     // read twice by one node: not over it
  ir::Value* shape = b.constantInt64("shape", {2}, {6, 1600});
  ir::Value* view = b.node("Reshape", {sq, shape});  // a view of sq, which Exp reads too
  ir::Value* exp = b.node("Exp", {view});        // view shares sq's bytes, read below: not over it
  ir::Value* back = b.node("Reshape", {exp, b.constantInt64("back", {4}, {2, 3, 40, 40})});
  ir::Value* clip = b.node("Clip", {sq, b.constant("lo", {}, {0.5f}), b.constant("hi", {}, {3.0f})});
  ir::Value* out = b.node("Sub", {back, clip});  // over back (exp's bytes)
  b.output(relu);                                // a graph output, read by later nodes
  b.output(out);
  ir::Model m = b.build(17);

  ir::Tensor xt = floats({2, 3, 40, 40}, 0.1f);
  const std::vector<float> before(xt.data<float>(), xt.data<float>() + xt.numel());
  auto session = runtime::Session::create(m);
  REQUIRE(session.isOk());
  for (int run = 0; run < 2; ++run) {  // the second run on pooled buffers
    auto result = (*session)->run({{"x", xt}});
    INFO(result.status().message());
    REQUIRE(result.isOk());
    REQUIRE(result->size() == 2);
    const float* r = (*result)[0].second.data<float>();
    const float* o = (*result)[1].second.data<float>();
    for (int64_t i = 0; i < xt.numel(); ++i) {
      const float xi = before[static_cast<size_t>(i)];
      REQUIRE(xt.data<float>()[i] == xi);  // the caller's input is untouched
      const float ri = std::max(-xi, 0.0f);
      const float s = 1.0f / (1.0f + std::exp(-ri)) + ri;
      const float q = s * s;
      const float want = std::exp(q) - std::min(std::max(q, 0.5f), 3.0f);
      REQUIRE(r[i] == ri);
      REQUIRE(o[i] == Approx(want).epsilon(1e-5));
    }
  }
}

TEST_CASE("a chain of elementwise nodes holds one activation buffer, not two", "[runtime]") {
  // Each node writes over its input: after the first (which reads the feed), the chain lives in
  // one 1 MB buffer; writing each into a buffer of its own held two at once.
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 16, 128, 128});
  ir::Value* v = b.node("Neg", {x});
  v = b.node("Relu", {v});
  v = b.node("Sigmoid", {v});
  v = b.node("Add", {v, b.constant("one", {1, 16, 1, 1}, std::vector<float>(16, 1.0f))});
  v = b.node("Tanh", {v});
  b.output(v);
  ir::Model m = b.build(17);
  auto session = runtime::Session::create(m);
  REQUIRE(session.isOk());
  ir::Tensor xt = floats({1, 16, 128, 128}, 0.0f);
  auto result = (*session)->run({{"x", xt}});
  REQUIRE(result.isOk());
  const size_t bytes = 16 * 128 * 128 * sizeof(float);
  CHECK((*session)->peakActivationBytes() < 2 * bytes);
  const float* y = (*result)[0].second.data<float>();
  for (int64_t i = 0; i < xt.numel(); ++i) {
    const float r = std::max(-xt.data<float>()[i], 0.0f);
    REQUIRE(y[i] == Approx(std::tanh(1.0f / (1.0f + std::exp(-r)) + 1.0f)).epsilon(1e-5));
  }
}

}  // namespace
}  // namespace whittle
