#pragma once
// Random com.microsoft MatMulNBits problems in ONNX Runtime's layout (B packed, scales, zero
// points packed or float), with the dequantized weights in double beside them: the data of the
// MatMulNBits kernel tests (float and int8 activations).

#include <cstdint>
#include <random>
#include <vector>

#include "whittle/ir/tensor.h"

namespace whittle::testing {

/// One MatMulNBits problem in ONNX Runtime's layout, with the dequantized weights beside it.
struct NBitsCase {
  int64_t m, k, n, bits, block;
  bool zeroPoints, bias;
  bool floatZeroPoints = false;
};

struct NBitsData {
  ir::Tensor b, scales, zp;  // zp empty when absent
  std::vector<double> w;     // [K, N] dequantized
  std::vector<float> a, bias;
};

/// Random codes, scales (0.001..0.02), zero points and A (-1..1), bias when c.bias.
NBitsData makeData(const NBitsCase& c, std::mt19937_64& rng);

}  // namespace whittle::testing
