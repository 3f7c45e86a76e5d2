// Shape rules of data movement: Split, Slice, Pad, Resize and Upsample in their attribute and
// input forms by opset; Transpose, Concat, Gather, Tile, DepthToSpace, TopK, OneHot.
#include <catch2/catch.hpp>
#include <limits>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::stringAttr;
using testing::typeOf;

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

std::vector<std::string> typesOf(const std::vector<ir::Value*>& values) {
  std::vector<std::string> out;
  for (const ir::Value* v : values) out.push_back(typeOf(v));
  return out;
}

}  // namespace

TEST_CASE("Split: split attribute, split input (opset 13), num_outputs (opset 18)", "[ir][shape]") {
  SECTION("opset 11") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {6, 4});
    std::vector<ir::Value*> sized = b.nodeN("Split", {x}, 2, {ints("split", {2, 4})});
    std::vector<ir::Value*> equal = b.nodeN("Split", {x}, 2, {intAttr("axis", 1)});
    ir::Model model;
    testing::buildAndInfer(b, model, 11);
    CHECK(typesOf(sized) == std::vector<std::string>{"float32[2,4]", "float32[4,4]"});
    CHECK(typesOf(equal) == std::vector<std::string>{"float32[6,2]", "float32[6,2]"});
  }
  SECTION("opset 13") {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "6"}));
    std::vector<ir::Value*> sized = b.nodeN("Split", {x, b.constantInt64("s", {2}, {1, 5})}, 2, {intAttr("axis", 1)});
    std::vector<ir::Value*> equal = b.nodeN("Split", {x}, 3, {intAttr("axis", -1)});
    std::vector<ir::Value*> batch = b.nodeN("Split", {x}, 2);
    ir::Model model;
    testing::buildAndInfer(b, model, 13);
    CHECK(typesOf(sized) == std::vector<std::string>{"float32[batch,1]", "float32[batch,5]"});
    CHECK(typesOf(equal) == std::vector<std::string>{"float32[batch,2]", "float32[batch,2]", "float32[batch,2]"});
    CHECK(typesOf(batch) == std::vector<std::string>{"float32[?,6]", "float32[?,6]"});
  }
  SECTION("opset 18: uneven parts with num_outputs") {
    GraphBuilder b;
    std::vector<ir::Value*> parts =
        b.nodeN("Split", {b.input("x", DataType::kFloat, {7, 2})}, 3, {intAttr("num_outputs", 3)});
    ir::Model model;
    testing::buildAndInfer(b, model, 18);
    CHECK(typesOf(parts) == std::vector<std::string>{"float32[3,2]", "float32[3,2]", "float32[1,2]"});
  }
}

TEST_CASE("Slice: attributes before opset 10, inputs after; negative steps; symbolic dims", "[ir][shape]") {
  SECTION("opset 9") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {4, 10});
    ir::Value* y = b.node("Slice", {x}, {ints("starts", {1, -3}), ints("ends", {1000, -1})});
    ir::Value* z = b.node("Slice", {x}, {ints("starts", {2}), ints("ends", {5}), ints("axes", {1})});
    ir::Model model;
    testing::buildAndInfer(b, model, 9);
    CHECK(typeOf(y) == "float32[3,2]");
    CHECK(typeOf(z) == "float32[4,3]");
  }
  SECTION("opset 13") {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "10", "8"}));
    auto i64 = [&](const std::string& n, std::vector<int64_t> v) {
      return b.constantInt64(n, {static_cast<int64_t>(v.size())}, v);
    };
    ir::Value* mid = b.node("Slice", {x, i64("s1", {2}), i64("e1", {-1}), i64("a1", {1})});
    ir::Value* rev = b.node("Slice", {x, i64("s2", {-1}), i64("e2", {kInt64Min}), i64("a2", {2}), i64("st2", {-2})});
    ir::Value* all = b.node("Slice", {x, i64("s3", {0}), i64("e3", {kInt64Max}), i64("a3", {0})});
    ir::Value* tail = b.node("Slice", {x, i64("s4", {1}), i64("e4", {kInt64Max}), i64("a4", {0})});
    ir::Value* unknown = b.node("Slice", {x, b.node("Relu", {i64("s5", {1})}), i64("e5", {3}), i64("a5", {1})});
    ir::Value* reversedAll =
        b.node("Slice", {x, i64("s6", {-1}), i64("e6", {kInt64Min}), i64("a6", {0}), i64("st6", {-1})});
    ir::Model model;
    testing::buildAndInfer(b, model, 13);
    CHECK(typeOf(mid) == "float32[batch,7,8]");
    CHECK(typeOf(rev) == "float32[batch,10,4]");
    CHECK(typeOf(all) == "float32[batch,10,8]");
    CHECK(typeOf(tail) == "float32[?,10,8]");
    CHECK(typeOf(unknown) == "float32[batch,?,8]");
    CHECK(typeOf(reversedAll) == "float32[batch,10,8]");
  }
}

TEST_CASE("Pad: pads attribute (opset 7), pads input (opset 11), axes input (opset 18)", "[ir][shape]") {
  for (int64_t opset : {7, 11, 18}) {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"N", "3", "4", "4"}));
    ir::Value* padded;
    if (opset == 7) {
      padded = b.node("Pad", {x}, {ints("pads", {0, 0, 1, 1, 0, 0, 1, 2})});
    } else if (opset == 11) {
      padded = b.node("Pad", {x, b.constantInt64("p", {8}, {0, 0, 1, 1, 0, 0, 1, 2})});
    } else {
      padded = b.node("Pad", {x, b.constantInt64("p", {4}, {1, 1, 1, 2}), nullptr, b.constantInt64("a", {2}, {2, -1})});
    }
    ir::Value* unknownPads = opset == 7 ? nullptr : b.node("Pad", {x, b.node("Relu", {b.constantInt64("q", {8}, {})})});
    ir::Model model;
    testing::buildAndInfer(b, model, opset);
    INFO("opset " << opset);
    CHECK(typeOf(padded) == "float32[N,3,6,7]");
    if (unknownPads != nullptr) CHECK(typeOf(unknownPads) == "float32[?,?,?,?]");
  }
}

TEST_CASE("Resize and Upsample: scales or sizes, by opset; axes and keep_aspect_ratio_policy", "[ir][shape]") {
  SECTION("Upsample 7 (attribute) and 9 (input); Resize 10") {
    for (int64_t opset : {7, 9, 10}) {
      GraphBuilder b;
      ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 4, 5});
      ir::Value* scales = b.constant("scales", {4}, {1, 1, 2, 1.5f});
      ir::Value* up = opset == 7   ? b.node("Upsample", {x}, {ir::Attribute::makeFloats("scales", {1, 1, 2, 1.5f})})
                      : opset == 9 ? b.node("Upsample", {x, scales})
                                   : b.node("Resize", {x, scales});
      ir::Model model;
      testing::buildAndInfer(b, model, opset);
      INFO("opset " << opset);
      CHECK(typeOf(up) == "float32[1,3,8,7]");
    }
  }
  SECTION("Resize 11 and 13: sizes, scales with an empty roi, symbolic dims scaled by whole numbers") {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"N", "3", "H", "8"}));
    ir::Value* empty = b.constant("empty", {0}, {});
    ir::Value* sized = b.node("Resize", {x, empty, empty, b.constantInt64("sizes", {4}, {1, 3, 5, 7})});
    ir::Value* scaled = b.node("Resize", {x, nullptr, b.constant("sc", {4}, {1, 1, 2, 0.5f})});
    ir::Value* computed =
        b.node("Resize", {x, nullptr, nullptr,
                          b.node("Concat",
                                 {b.node("Slice", {b.node("Shape", {x}), b.constantInt64("z0", {1}, {0}),
                                                   b.constantInt64("z2", {1}, {2})}),
                                  b.constantInt64("hw", {2}, {16, 16})},
                                 {intAttr("axis", 0)})});
    ir::Model model;
    testing::buildAndInfer(b, model, 13);
    CHECK(typeOf(sized) == "float32[1,3,5,7]");
    CHECK(typeOf(scaled) == "float32[N,3,?,4]");  // 2*H has no name
    CHECK(typeOf(computed) == "float32[N,3,16,16]");
  }
  SECTION("Resize 18: axes, keep_aspect_ratio_policy") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 4, 8});
    ir::Value* sizes = b.constantInt64("sizes", {2}, {8, 8});
    ir::Value* stretch = b.node("Resize", {x, nullptr, nullptr, sizes}, {ints("axes", {2, 3})});
    ir::Value* notLarger = b.node("Resize", {x, nullptr, nullptr, sizes},
                                  {ints("axes", {2, 3}), stringAttr("keep_aspect_ratio_policy", "not_larger")});
    ir::Value* notSmaller = b.node("Resize", {x, nullptr, nullptr, sizes},
                                   {ints("axes", {-2, -1}), stringAttr("keep_aspect_ratio_policy", "not_smaller")});
    ir::Value* scaled = b.node("Resize", {x, nullptr, b.constant("sc", {1}, {3})}, {ints("axes", {3})});
    ir::Model model;
    testing::buildAndInfer(b, model, 18);
    CHECK(typeOf(stretch) == "float32[1,3,8,8]");
    CHECK(typeOf(notLarger) == "float32[1,3,4,8]");
    CHECK(typeOf(notSmaller) == "float32[1,3,8,16]");
    CHECK(typeOf(scaled) == "float32[1,3,4,24]");
  }
}

TEST_CASE("Transpose, Concat, Gather, Tile, DepthToSpace, SpaceToDepth, TopK, OneHot", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "seq", "4"}));
  ir::Value* t = b.node("Transpose", {x}, {ints("perm", {0, 2, 1})});
  ir::Value* rev = b.node("Transpose", {x});
  ir::Value* cat = b.node("Concat", {x, x}, {intAttr("axis", -1)});
  ir::Value* catSeq = b.node("Concat", {x, x}, {intAttr("axis", 1)});
  ir::Value* gathered = b.node("Gather", {x, b.constantInt64("idx", {2, 3}, {0, 1, 2, 0, 1, 2})}, {intAttr("axis", 2)});
  ir::Value* tiled = b.node("Tile", {x, b.constantInt64("reps", {3}, {1, 2, 3})});
  ir::Value* img = b.input("img", DataType::kFloat, {1, 8, 2, 3});
  ir::Value* d2s = b.node("DepthToSpace", {img}, {intAttr("blocksize", 2)});
  ir::Value* s2d = b.node("SpaceToDepth", {d2s}, {intAttr("blocksize", 2)});
  std::vector<ir::Value*> top = b.nodeN("TopK", {x, b.constantInt64("k", {1}, {3})}, 2, {intAttr("axis", 1)});
  ir::Value* hot = b.node("OneHot", {b.symbolicInput("ids", DataType::kInt64, dims({"batch", "5"})),
                                     b.constantInt64("depth", {}, {10}), b.weight("onoff", {2})});
  ir::Value* elements = b.node("GatherElements", {x, b.input("ge", DataType::kInt64, {2, 3, 4})});
  ir::Value* nd =
      b.node("GatherND", {b.input("data", DataType::kFloat, {2, 3, 4}), b.input("nd", DataType::kInt64, {5, 2})});
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 13);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(t) == "float32[batch,4,seq]");
  CHECK(typeOf(rev) == "float32[4,seq,batch]");
  CHECK(typeOf(cat) == "float32[batch,seq,8]");
  CHECK(typeOf(catSeq) == "float32[batch,?,4]");  // 2*seq has no name
  CHECK(typeOf(gathered) == "float32[batch,seq,2,3]");
  CHECK(typeOf(tiled) == "float32[batch,?,12]");
  CHECK(typeOf(d2s) == "float32[1,2,4,6]");
  CHECK(typeOf(s2d) == "float32[1,8,2,3]");
  CHECK(typeOf(top[0]) == "float32[batch,3,4]");
  CHECK(typeOf(top[1]) == "int64[batch,3,4]");
  CHECK(typeOf(hot) == "float32[batch,5,10]");
  CHECK(typeOf(elements) == "float32[2,3,4]");
  CHECK(typeOf(nd) == "float32[5,4]");
}

TEST_CASE("TopK's k is an attribute before opset 10", "[ir][shape]") {
  GraphBuilder b;
  std::vector<ir::Value*> top = b.nodeN("TopK", {b.input("x", DataType::kFloat, {2, 10})}, 2, {intAttr("k", 4)});
  ir::Model model;
  testing::buildAndInfer(b, model, 9);
  CHECK(typeOf(top[0]) == "float32[2,4]");
  CHECK(typeOf(top[1]) == "int64[2,4]");
}

TEST_CASE("GatherBlockQuantized: Gather's shape in the scales' type; packed uint8 tables unpack", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* ids = b.symbolicInput("ids", DataType::kInt64, dims({"batch", "seq"}));
  ir::Value* packed = b.node("GatherBlockQuantized", {b.weight("t8", {100, 16}, DataType::kUint8), ids, b.weight("s8", {100, 1})},
                             {intAttr("block_size", 32), intAttr("bits", 4)}, "", "com.microsoft");
  ir::Value* axis1 = b.node("GatherBlockQuantized",
                            {b.weight("t3", {2, 5, 32}, DataType::kUint8), b.input("i", DataType::kInt64, {4}), b.weight("s3", {2, 5, 1})},
                            {intAttr("gather_axis", 1), intAttr("quantize_axis", 2), intAttr("block_size", 32), intAttr("bits", 8)}, "",
                            "com.microsoft");
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 21);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(packed) == "float32[batch,seq,32]");
  CHECK(typeOf(axis1) == "float32[2,4,32]");
}
