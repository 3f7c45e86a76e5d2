#pragma once
// Pooling geometry (ONNX semantics: auto_pad, pads, strides, dilations, ceil_mode) and plain
// scalar pools: the ground truth for tests and the path for what oneDNN does not cover
// (Indices, LpPool, integer dtypes, average pooling whose ceil_mode windows overhang the pads).
// Tensors are channels first (ONNX order), row major.

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/conv_params.h"
#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::runtime::cpu {

/// The attributes of MaxPool, AveragePool and LpPool.
struct PoolAttrs {
  AutoPad autoPad = AutoPad::kNotSet;
  std::vector<int64_t> kernelShape;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;
  bool ceilMode = false;
  bool countIncludePad = false;
  int64_t storageOrder = 0;
  float p = 2;  ///< LpPool
};

Expected<PoolAttrs> readPoolAttrs(const ir::Node& node);

/// One pooling, resolved for an input shape.
struct PoolGeometry {
  std::vector<int64_t> src;  ///< [N, C, D...]
  std::vector<int64_t> dst;  ///< [N, C, O...]
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> padBegin, padEnd;  ///< as given (or from auto_pad)
  /// End padding that makes the last (ceil_mode) window fit: >= padEnd when windows overhang.
  std::vector<int64_t> padEndEffective;
  bool operator==(const PoolGeometry&) const = default;
};

Expected<PoolGeometry> resolvePool(const PoolAttrs& attrs, const std::vector<int64_t>& x, const std::string& what);

enum class PoolKind { kMax, kAverage, kLp };

/// Pools `x` into `y` (dims g.dst). For kMax, `indices` (may be null) receives the flat
/// index of each maximum, in row-major order (storageOrder 0) or with the spatial dims
/// reversed (1). T is float, double or an integer type (kMax only).
template <typename T>
void referencePool(const PoolGeometry& g, PoolKind kind, bool countIncludePad, float p, int64_t storageOrder,
                   const T* x, T* y, int64_t* indices);

}  // namespace whittle::runtime::cpu
