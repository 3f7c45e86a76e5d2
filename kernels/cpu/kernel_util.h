#pragma once
// Helpers shared by the CPU kernel families: dtype dispatch, broadcasting, attribute access
// and oneDNN glue. Keep op-specific code in the family files.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {

/// Whether the CPU has AVX and F16C. F16C is read from CPUID leaf 1 because clang 14's
/// __builtin_cpu_supports does not know "f16c"; false off x86-64.
bool cpuHasAvxF16c();

/// "[1,3,224,224]".
std::string shapeToString(const std::vector<int64_t>& dims);

/// Numpy-style broadcast of two shapes; nullopt when they do not broadcast.
std::optional<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

/// Strides (in elements) of `dims` laid out row-major, with 0 for broadcast dimensions when
/// seen from `outDims` (which must have at least as many dims; leading ones are implied).
std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& dims, const std::vector<int64_t>& outDims);

/// Normalises a possibly negative axis against `rank`; nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Reads an integer tensor (int32 or int64) as int64 values.
Expected<std::vector<int64_t>> readInts(const ir::Tensor& t, const std::string& what);

/// Calls `fn(T{})` with T the C++ type of `dtype` (float, double, int8..int64, uint8..uint64,
/// bool as uint8_t); returns false for other dtypes.
template <typename F>
bool dispatchNumeric(ir::DataType dtype, F&& fn) {
  using ir::DataType;
  switch (dtype) {
    case DataType::kFloat: fn(float{}); return true;
    case DataType::kDouble: fn(double{}); return true;
    case DataType::kInt8: fn(int8_t{}); return true;
    case DataType::kInt16: fn(int16_t{}); return true;
    case DataType::kInt32: fn(int32_t{}); return true;
    case DataType::kInt64: fn(int64_t{}); return true;
    case DataType::kUint8: fn(uint8_t{}); return true;
    case DataType::kUint16: fn(uint16_t{}); return true;
    case DataType::kUint32: fn(uint32_t{}); return true;
    case DataType::kUint64: fn(uint64_t{}); return true;
    case DataType::kBool: fn(uint8_t{}); return true;
    default: return false;
  }
}

/// A float32 copy of a float16/bfloat16/float64 tensor (for kernels that compute in float32),
/// or the tensor itself when it is float32 already.
ir::Tensor toFloat32(const ir::Tensor& t);
/// Converts a float32 tensor to `dtype` (float16, bfloat16, float64 or float32).
ir::Tensor fromFloat32(const ir::Tensor& t, ir::DataType dtype);

}  // namespace whittle::runtime::cpu
