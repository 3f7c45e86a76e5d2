#pragma once
// Reading and writing tensor elements as double, for the plain reference kernels of the
// rarer op families (signal, random, ai.onnx.ml, training) that compute in double and store
// in the dtype a model asks for.

#include <cstdint>
#include <string>

#include "cpu/kernel_util.h"
#include "whittle/ir/tensor.h"

namespace whittle::runtime::cpu {

/// Whether elements of `t` can be written from double by storeDouble (float, double,
/// float16, bfloat16, the integers and bool).
inline bool isDoubleStorable(ir::DataType t) {
  return t == ir::DataType::kFloat16 || t == ir::DataType::kBFloat16 || dispatchNumeric(t, [](auto) {});
}

/// Writes `v` into element `i` of `t` (whose dtype isDoubleStorable): rounded to nearest
/// for float16/bfloat16, truncated toward zero for integers, v != 0 for bool.
inline void storeDouble(ir::Tensor& t, int64_t i, double v) {
  ir::DataType dt = t.dtype();
  if (dt == ir::DataType::kFloat16) {
    t.mutableData<uint16_t>()[i] = ir::floatToHalf(static_cast<float>(v));
    return;
  }
  if (dt == ir::DataType::kBFloat16) {
    t.mutableData<uint16_t>()[i] = ir::floatToBfloat16(static_cast<float>(v));
    return;
  }
  if (dt == ir::DataType::kBool) {
    t.mutableData<uint8_t>()[i] = v != 0 ? 1 : 0;
    return;
  }
  dispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    t.mutableData<T>()[i] = static_cast<T>(v);
  });
}

/// The one value of a scalar (or one-element) numeric tensor as double; nullopt otherwise.
inline std::optional<double> scalarAsDouble(const ir::Tensor& t) {
  if (t.numel() != 1 || t.dtype() == ir::DataType::kString) return std::nullopt;
  return t.valueAsDouble(0);
}

}  // namespace whittle::runtime::cpu
