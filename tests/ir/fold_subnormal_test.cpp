// Subnormal constants flushed to zero (whittle/ir/fold.h: countSubnormals, flushSubnormals,
// flushSubnormalConstants).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "support/graph_builder.h"
#include "whittle/ir/fold.h"

using namespace whittle;
using ir::DataType;

namespace {
constexpr float kMinNormal = std::numeric_limits<float>::min();
constexpr float kSub = std::numeric_limits<float>::denorm_min() * 1000.0f;  // subnormal
}  // namespace

TEST_CASE("flushSubnormals zeroes float32 and float64 subnormals with their sign and nothing else", "[ir][fold]") {
  ir::Tensor t = ir::Tensor::fromVector(DataType::kFloat, {6}, std::vector<float>{1.0f, kSub, -kSub, kMinNormal, 0.0f, -2e-30f});
  CHECK(ir::countSubnormals(t) == 2);
  auto f = ir::flushSubnormals(t);
  REQUIRE(f.has_value());
  CHECK(f->dims() == t.dims());
  auto v = f->values<float>();
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == 0.0f);
  CHECK_FALSE(std::signbit(v[1]));
  CHECK(v[2] == 0.0f);
  CHECK(std::signbit(v[2]));
  CHECK(v[3] == kMinNormal);  // the smallest normal number stays
  CHECK(v[5] == -2e-30f);
  CHECK(t.values<float>()[1] == kSub);  // the input is not touched
  CHECK(ir::countSubnormals(*f) == 0);
  CHECK_FALSE(ir::flushSubnormals(*f).has_value());

  double dsub = std::numeric_limits<double>::denorm_min() * 7;
  ir::Tensor d = ir::Tensor::fromVector(DataType::kDouble, {3}, std::vector<double>{dsub, 1e-300, static_cast<double>(kSub)});
  CHECK(ir::countSubnormals(d) == 1);  // a float32 subnormal is a normal double
  auto fd = ir::flushSubnormals(d);
  REQUIRE(fd.has_value());
  CHECK(fd->values<double>()[0] == 0.0);
  CHECK(fd->values<double>()[1] == 1e-300);

  // Other types are never changed (float16 subnormals are ordinary float32 values once widened).
  ir::Tensor h = ir::Tensor::fromVector(DataType::kFloat16, {1}, std::vector<uint16_t>{0x0001});
  CHECK(ir::countSubnormals(h) == 0);
  CHECK_FALSE(ir::flushSubnormals(h).has_value());
}

TEST_CASE("flushSubnormalConstants flushes initializers and Constant nodes, leaving shared tensors alone",
          "[ir][fold]") {
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Tensor w = ir::Tensor::fromVector(DataType::kFloat, {2}, std::vector<float>{kSub, 3.0f});
  ir::Value* wv = b.constant("w", w);
  ir::Value* clean = b.constant("clean", {2}, {1.0f, 2.0f});
  ir::Value* c = b.node("Constant", {}, {ir::Attribute::makeTensor("value", ir::Tensor::fromVector(DataType::kFloat, {2}, std::vector<float>{-kSub, kSub}))});
  b.output(b.node("Add", {b.node("Mul", {b.node("Mul", {x, wv}), clean}), c}), DataType::kFloat, {2});
  ir::Model model = b.build(17);
  const ir::Tensor* cleanBefore = clean->constant();

  ir::SubnormalFlush done = ir::flushSubnormalConstants(*model.graph);
  CHECK(done.tensors == 2);
  CHECK(done.elements == 3);
  CHECK(wv->constant()->values<float>()[0] == 0.0f);
  CHECK(wv->constant()->values<float>()[1] == 3.0f);
  CHECK(w.values<float>()[0] == kSub);      // the caller's tensor, which the initializer shared
  CHECK(clean->constant() == cleanBefore);  // untouched constants are not copied
  const ir::Attribute* value = c->producer()->findAttribute("value");
  REQUIRE(value != nullptr);
  CHECK(ir::countSubnormals(value->t) == 0);
  CHECK(ir::flushSubnormalConstants(*model.graph).tensors == 0);
}
