// The block-wise embedding lowering (src/runtime/lower_gather_blockwise.cpp): Gather from
// DequantizeLinear(block_size, last axis) becomes GatherBlockQuantized, which dequantizes only the
// gathered rows, bit for bit what the unlowered graph computes; what does not fit stays.
#include <catch2/catch.hpp>

#include <random>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/kernel_harness.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using ir::DataType;
using testing::GraphBuilder;

namespace {

struct TableCase {
  DataType type;
  std::vector<int64_t> dims;  // the table; blocks along the last axis
  int64_t block;
  bool zeroPoint;
  int64_t gatherAxis = 0;
  int64_t dqAxis = -1;
};

/// Random integers of `type` as a tensor of `dims` (4-bit types packed two a byte, low nibble first).
ir::Tensor packedInts(std::mt19937_64& rng, DataType type, const std::vector<int64_t>& dims) {
  const bool four = type == DataType::kInt4 || type == DataType::kUint4;
  const bool isSigned = type == DataType::kInt4 || type == DataType::kInt8;
  const int32_t lo = four ? (isSigned ? -8 : 0) : (isSigned ? -128 : 0), hi = lo + (four ? 15 : 255);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  ir::Tensor t(type, dims);
  auto* bytes = reinterpret_cast<uint8_t*>(t.mutableRawData());
  const int64_t count = t.numel();
  std::fill(bytes, bytes + (four ? (count + 1) / 2 : count), uint8_t{0});
  for (int64_t i = 0; i < count; ++i) {
    const auto u = static_cast<uint8_t>(dist(rng));
    if (four) {
      bytes[i / 2] |= static_cast<uint8_t>((u & 15) << ((i & 1) * 4));
    } else {
      bytes[i] = u;
    }
  }
  return t;
}

/// ids [2, 3] -> Gather(DQ(q, s, z), ids; axis) -> y; `extraReader` adds a ReduceSum of the table.
ir::Model gatherModel(const TableCase& c, std::mt19937_64& rng, bool extraReader = false) {
  std::vector<int64_t> scaleDims = c.dims;
  const size_t axis = static_cast<size_t>(c.dqAxis < 0 ? c.dqAxis + static_cast<int64_t>(c.dims.size()) : c.dqAxis);
  scaleDims[axis] = (scaleDims[axis] + c.block - 1) / c.block;
  GraphBuilder gb;
  ir::Value* ids = gb.input("ids", DataType::kInt64, {2, 3});
  std::vector<ir::Value*> dqIn = {gb.constant("q", packedInts(rng, c.type, c.dims)),
                                  gb.constant("s", testing::randomTensor(rng, DataType::kFloat, scaleDims, 0.01, 0.05))};
  if (c.zeroPoint) dqIn.push_back(gb.constant("z", packedInts(rng, c.type, scaleDims)));
  ir::Value* table = gb.node("DequantizeLinear", dqIn,
                             {ir::Attribute::makeInt("axis", c.dqAxis), ir::Attribute::makeInt("block_size", c.block)}, "dq");
  gb.output(gb.node("Gather", {table, ids}, {ir::Attribute::makeInt("axis", c.gatherAxis)}, "gather"));
  if (extraReader) gb.output(gb.node("ReduceSum", {table}, {}, "sum"));
  return gb.build(21);
}

std::vector<runtime::NamedTensor> someIds(int64_t rows) {
  return {{"ids", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {2, 3}, {0, rows - 1, 3, -1, 2, 1})}};
}

}  // namespace

TEST_CASE("Gather from a block-wise DequantizeLinear runs as GatherBlockQuantized, bit for bit", "[runtime][lowering][nbits]") {
  std::mt19937_64 rng(21);
  const std::vector<TableCase> cases = {
      {DataType::kInt8, {40, 384}, 128, false},      // the MiniLM embedding's form (quantize-weights, symmetric)
      {DataType::kInt8, {40, 96}, 32, true},         // int8 zero points go to uint8 as the table does
      {DataType::kUint8, {30, 64}, 16, false},       // uint8 without zero points: explicit zeros (the op's default is 128)
      {DataType::kUint8, {30, 80}, 32, true},        // a partial last block
      {DataType::kInt4, {20, 64}, 16, true},         // 4-bit tables pass as they are
      {DataType::kUint4, {20, 96}, 32, false},       //
      {DataType::kInt8, {3, 20, 64}, 32, false, 1},  // gathering along a middle axis
  };
  for (const TableCase& c : cases) {
    CAPTURE(ir::dataTypeName(c.type), c.dims, c.block, c.zeroPoint, c.gatherAxis);
    ir::Model model = gatherModel(c, rng);
    ir::Model lowered = testing::lowered(model);
    CHECK(testing::countOps(*lowered.graph, "GatherBlockQuantized") == 1);
    CHECK(testing::countOps(*lowered.graph, "DequantizeLinear") == 0);
    CHECK(testing::countOps(*lowered.graph, "Gather") == 0);
    testing::checkSameAsUnlowered(model, someIds(c.dims[static_cast<size_t>(c.gatherAxis)]), 0.0);
  }
}

TEST_CASE("DontLowerBlockwiseGather: blocks along the gathered axis, odd blocks, 4-bit odd rows and kept tables stay",
          "[runtime][lowering][nbits]") {
  std::mt19937_64 rng(22);
  for (const TableCase& c : {TableCase{DataType::kInt8, {64, 16}, 16, false, 0, 0},  // blocks along the gathered axis
                             TableCase{DataType::kInt8, {20, 48}, 12, false},         // not a power of two
                             TableCase{DataType::kInt4, {20, 33}, 16, false},         // rows not starting on a byte
                             TableCase{DataType::kUint4, {20, 96}, 32, true}}) {      // 3 zero points a row, packed
    CAPTURE(ir::dataTypeName(c.type), c.dims, c.block);
    ir::Model model = gatherModel(c, rng);
    ir::Model lowered = testing::lowered(model);
    CHECK(testing::countOps(*lowered.graph, "GatherBlockQuantized") == 0);
    CHECK(testing::countOps(*lowered.graph, "Gather") == 1);
    testing::checkSameAsUnlowered(model, someIds(c.dims[0]), 0.0);
  }
  ir::Model kept = gatherModel({DataType::kInt8, {20, 64}, 32, false}, rng);
  const std::string dqOut = testing::findNode(*kept.graph, "dq")->output(0)->name();
  REQUIRE(runtime::lowerForCpu(*kept.graph, {dqOut}).isOk());
  CHECK(testing::countOps(*kept.graph, "GatherBlockQuantized") == 0);
}

TEST_CASE("A block-wise table read by another op keeps its DequantizeLinear for that reader", "[runtime][lowering][nbits]") {
  std::mt19937_64 rng(23);
  const TableCase c{DataType::kInt8, {24, 64}, 32, true};
  ir::Model model = gatherModel(c, rng, /*extraReader=*/true);
  ir::Model lowered = testing::lowered(model);
  CHECK(testing::countOps(*lowered.graph, "GatherBlockQuantized") == 1);
  CHECK(testing::countOps(*lowered.graph, "DequantizeLinear") == 1);
  testing::checkSameAsUnlowered(model, someIds(24), 0.0);
}
