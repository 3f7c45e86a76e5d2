// Whether a node is worth more than one thread (kernels/cpu/thread_cost.h), and the session
// running each node on the threads the rule gives it.
#include "cpu/thread_cost.h"

#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/runtime/session.h"

namespace whittle::runtime::cpu {
namespace {

/// The work of the last node of `b`'s model, after shape inference.
NodeWork lastNodeWork(testing::GraphBuilder& b, ir::Value* y) {
  b.output(y);
  ir::Model m = b.build(17);
  (void)ir::inferShapes(m);
  return estimateWork(*m.graph->nodes().back());
}

TEST_CASE("thread cost: a convolution's work is its multiply-adds", "[kernels][threads]") {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 16, 32, 32});
  ir::Value* w = b.weight("w", {32, 16, 3, 3});
  NodeWork big = lastNodeWork(b, b.node("Conv", {x, w}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}));
  REQUIRE(big.known);
  CHECK(big.macs == int64_t{32} * 32 * 32 * 16 * 9);  // every output element, 16 x 3 x 3 products
  CHECK(threadsForWork(big, 2) == 2);
  CHECK(threadsForWork(big, 1) == 1);
  // 4.7 M multiply-adds fill 9 threads at 2^19 each: 16 asked, 9 given.
  CHECK(threadsForWork(big, 16) == 9);

  ir::Value* xs = b.input("x", ir::DataType::kFloat, {1, 4, 8, 8});
  ir::Value* ws = b.weight("w", {4, 4, 3, 3});
  NodeWork small = lastNodeWork(b, b.node("Conv", {xs, ws}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}));
  REQUIRE(small.known);
  CHECK(small.macs == int64_t{4} * 64 * 4 * 9);
  CHECK(threadsForWork(small, 2) == 1);
}

TEST_CASE("thread cost: a transposed convolution scatters each input element", "[kernels][threads]") {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 16, 16});
  ir::Value* w = b.weight("w", {8, 4, 2, 2});  // [C_in, C_out, kH, kW]
  NodeWork work = lastNodeWork(b, b.node("ConvTranspose", {x, w}, {ir::Attribute::makeInts("strides", {2, 2})}));
  REQUIRE(work.known);
  CHECK(work.macs == int64_t{8} * 256 * 4 * 4);
}

TEST_CASE("thread cost: a matrix product's work is M x N x K, Gemm's K after transA", "[kernels][threads]") {
  testing::GraphBuilder b;
  ir::Value* a = b.input("a", ir::DataType::kFloat, {64, 256});
  ir::Value* w = b.weight("w", {256, 128});
  NodeWork mm = lastNodeWork(b, b.node("MatMul", {a, w}));
  REQUIRE(mm.known);
  CHECK(mm.macs == int64_t{64} * 128 * 256);

  ir::Value* at = b.input("a", ir::DataType::kFloat, {256, 64});  // A^T stored: K = dims[0]
  ir::Value* wt = b.weight("w", {256, 128});
  NodeWork gemm = lastNodeWork(b, b.node("Gemm", {at, wt}, {ir::Attribute::makeInt("transA", 1)}));
  REQUIRE(gemm.known);
  CHECK(gemm.macs == int64_t{64} * 128 * 256);
}

TEST_CASE("thread cost: other nodes move bytes; constants are not counted", "[kernels][threads]") {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 64, 56, 56});
  ir::Value* y = b.input("y", ir::DataType::kFloat, {1, 64, 56, 56});
  NodeWork add = lastNodeWork(b, b.node("Add", {x, y}));
  REQUIRE(add.known);
  CHECK(add.macs == 0);
  CHECK(add.bytes == 3 * 64 * 56 * 56 * 4);  // two inputs and the output
  CHECK(threadsForWork(add, 2) == 2);

  ir::Value* xs = b.input("x", ir::DataType::kFloat, {1, 8, 8, 8});
  ir::Value* c = b.weight("c", {1, 8, 1, 1});
  NodeWork small = lastNodeWork(b, b.node("Mul", {xs, c}));
  REQUIRE(small.known);
  CHECK(small.bytes == 2 * 512 * 4);  // x and the output; the constant stays in cache
  CHECK(threadsForWork(small, 2) == 1);
}

TEST_CASE("thread cost: a node whose shapes are not static keeps every thread", "[kernels][threads]") {
  testing::GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("n"), ir::Dim::known(8)});
  NodeWork work = lastNodeWork(b, b.node("Relu", {x}));
  CHECK_FALSE(work.known);
  CHECK(threadsForWork(work, 2) == 2);
}

TEST_CASE("session: each node runs on the threads its work is worth, with the same outputs", "[runtime][threads]") {
  // A convolution worth two threads, then a Relu and a small Add worth one.
  auto model = [] {
    testing::GraphBuilder b(3);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 32, 28, 28});
    ir::Value* w = b.weight("w", {32, 32, 3, 3});
    ir::Value* y = b.node("Conv", {x, w}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "big_conv");
    ir::Value* p = b.node("GlobalAveragePool", {y}, {}, "pool");
    ir::Value* c = b.weight("c", {1, 32, 1, 1});
    b.output(b.node("Add", {p, c}, {}, "small_add"));
    return b.build(17);
  };
  testing::GraphBuilder inputs(5);
  std::vector<NamedTensor> feeds{{"x", inputs.randomTensor(ir::DataType::kFloat, {1, 32, 28, 28})}};
  std::vector<NamedTensor> outs[2];
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.threads = threads;
    options.profile = true;
    auto session = Session::create(model(), options);
    REQUIRE(session.isOk());
    auto run = (*session)->run(feeds);
    REQUIRE(run.isOk());
    outs[threads - 1] = *run;
    int seen = 0;
    for (const NodeProfile& p : (*session)->profile()) {
      CAPTURE(p.node, threads);
      if (p.node == "small_add") {
        CHECK(p.threads == 1);
        ++seen;
      }
      if (p.node.find("big_conv") != std::string::npos) {
        CHECK(p.threads == threads);
        ++seen;
      }
      CHECK(p.selfCpuMs >= 0);
      CHECK(p.selfSwitches >= 0);
    }
    CHECK(seen == 2);
  }
  REQUIRE(outs[0].size() == 1);
  REQUIRE(outs[1].size() == 1);
  const ir::Tensor& a = outs[0][0].second;
  const ir::Tensor& b = outs[1][0].second;
  REQUIRE(a.numel() == b.numel());
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.data<float>()[i] == Approx(b.data<float>()[i]).epsilon(1e-5));
}

}  // namespace
}  // namespace whittle::runtime::cpu
