// The lowering's channel gathers (src/runtime/lower_channel_gather.cpp): a chain of constant
// data movement that picks whole channels of a 4-D tensor becomes one ChannelGather, which stays
// channels last between convolutions. Each case checks the structure after lowering and that the
// lowered graph computes what the unlowered one does; negative cases check what must stay.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;

namespace {

ir::Value* conv(GraphBuilder& b, ir::Value* x, int64_t cin, int64_t cout, const std::string& name) {
  ir::Value* y = b.node("Conv",
                        {x, b.weight(name + "_w", {cout, cin, 3, 3}, ir::DataType::kFloat, -0.3, 0.3),
                         b.weight(name + "_b", {cout})},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, name);
  return b.node("Relu", {y}, {}, name + "_relu");
}

ir::Value* shape(GraphBuilder& b, const std::string& name, const std::vector<int64_t>& dims) {
  return b.constantInt64(name, {static_cast<int64_t>(dims.size())}, dims);
}

std::vector<const ir::Node*> gathers(const ir::Graph& g) {
  std::vector<const ir::Node*> out;
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "ChannelGather") out.push_back(n);
  }
  return out;
}

}  // namespace

TEST_CASE("ShuffleNet's channel shuffle becomes a ChannelGather kept channels last", "[runtime][lowering]") {
  // x -> Conv -> Reshape [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape [N, C, H, W] -> Conv
  GraphBuilder b(17);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 5, 4});
  ir::Value* a = conv(b, x, 3, 6, "a");
  ir::Value* grouped = b.node("Reshape", {a, shape(b, "s5", {1, 2, 3, 5, 4})}, {}, "r1");
  ir::Value* swapped = b.node("Transpose", {grouped}, {ir::Attribute::makeInts("perm", {0, 2, 1, 3, 4})}, "t");
  ir::Value* shuffled = b.node("Reshape", {swapped, shape(b, "s4", {1, 6, 5, 4})}, {}, "r2");
  b.output(conv(b, shuffled, 6, 4, "c"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(countOps(*m.graph, "Transpose") == 0);
  CHECK(countOps(*m.graph, "Reshape") == 0);
  auto g = gathers(*m.graph);
  REQUIRE(g.size() == 1);
  CHECK(g[0]->attrInts("channels") == std::vector<int64_t>{0, 3, 1, 4, 2, 5});
  CHECK(g[0]->attrInt("channels_last", 0) == 1);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 5, 4})}});
}

TEST_CASE("ShuffleNetV2's channel split becomes two ChannelGathers", "[runtime][lowering]") {
  // x [1, 8, 4, 4] -> Reshape [4, 2, 16] -> Transpose [1, 0, 2] -> Reshape [2, -1, 4, 4, 4]
  // -> Gather(0), Gather(1) on axis 0: the even channels and the odd ones.
  GraphBuilder b(19);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 4, 4});
  ir::Value* a = conv(b, x, 3, 8, "a");
  ir::Value* pairs = b.node("Reshape", {a, shape(b, "s3", {4, 2, 16})}, {}, "r1");
  ir::Value* swapped = b.node("Transpose", {pairs}, {ir::Attribute::makeInts("perm", {1, 0, 2})}, "t");
  ir::Value* halves = b.node("Reshape", {swapped, shape(b, "s5", {2, -1, 4, 4, 4})}, {}, "r2");
  ir::Value* even = b.node("Gather", {halves, b.constant("i0", ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {}, {0}))},
                           {ir::Attribute::makeInt("axis", 0)}, "g0");
  ir::Value* odd = b.node("Gather", {halves, b.constant("i1", ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {}, {1}))},
                          {ir::Attribute::makeInt("axis", 0)}, "g1");
  b.output(b.node("Concat", {even, conv(b, odd, 4, 4, "c")}, {ir::Attribute::makeInt("axis", 1)}, "cat"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(countOps(*m.graph, "Transpose") == 0);
  CHECK(countOps(*m.graph, "Gather") == 0);
  CHECK(countOps(*m.graph, "Reshape") == 0);
  auto g = gathers(*m.graph);
  REQUIRE(g.size() == 2);
  CHECK(g[0]->attrInts("channels") == std::vector<int64_t>{0, 2, 4, 6});
  CHECK(g[1]->attrInts("channels") == std::vector<int64_t>{1, 3, 5, 7});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 4, 4})}});
}

TEST_CASE("A strided Slice of channels is a ChannelGather, channels first on a graph input", "[runtime][lowering]") {
  GraphBuilder b(23);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 9, 3, 5});
  ir::Value* s = b.node("Slice", {x, shape(b, "st", {1}), shape(b, "en", {9}), shape(b, "ax", {1}), shape(b, "sp", {3})},
                        {}, "slice");
  b.output(b.node("Relu", {s}, {}, "relu"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  auto g = gathers(*m.graph);
  REQUIRE(g.size() == 1);
  CHECK(g[0]->attrInts("channels") == std::vector<int64_t>{1, 4, 7});
  CHECK(g[0]->attrInt("channels_last", 0) == 0);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {2, 9, 3, 5})}});
}

TEST_CASE("Data movement that does not pick whole channels stays", "[runtime][lowering]") {
  // Swapping H and W (H == W) keeps y's dims but moves elements within a channel; a Slice of
  // rows changes H; a chain of Reshapes alone picks nothing.
  GraphBuilder b(29);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 4, 4});
  ir::Value* a = conv(b, x, 2, 2, "a");
  ir::Value* t = b.node("Transpose", {a}, {ir::Attribute::makeInts("perm", {0, 1, 3, 2})}, "t");
  ir::Value* rows = b.node("Slice", {t, shape(b, "st", {1}), shape(b, "en", {3}), shape(b, "ax", {2})}, {}, "rows");
  ir::Value* flat = b.node("Reshape", {rows, shape(b, "s1", {1, 16})}, {}, "r1");
  b.output(b.node("Reshape", {flat, shape(b, "s2", {1, 2, 2, 4})}, {}, "r2"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(gathers(*m.graph).empty());
  CHECK(countOps(*m.graph, "Transpose") == 1);
  CHECK(countOps(*m.graph, "Slice") == 1);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 2, 4, 4})}});
}
