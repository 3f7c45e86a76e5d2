// Block-wise weight quantization: RTN with a clipping search, and the ONNX / ONNX Runtime
// layouts of the result (include/whittle/quant/blockwise.h).
#include "whittle/quant/blockwise.h"

#include <algorithm>
#include <cstring>

namespace whittle::quant {

Status checkBlockConfig(const BlockConfig& config) {
  if (config.bits != 4 && config.bits != 8) {
    return invalidInput("quantize-weights: bits must be 4 or 8, got " + std::to_string(config.bits));
  }
  if (config.block == 0) {
    if (config.bits != 8) {
      return invalidInput("quantize-weights: block=0 (one block per output channel) needs bits=8; 4-bit weights need blocks of 16 to 256");
    }
    return Status::ok();
  }
  if (config.block < 16 || (config.block & (config.block - 1)) != 0) {
    return invalidInput("quantize-weights: block must be a power of two >= 16 (or 0 with bits=8), got " +
                        std::to_string(config.block));
  }
  return Status::ok();
}

std::vector<float> BlockQuantized::dequantize() const {
  std::vector<float> out(static_cast<size_t>(rows * k));
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t kk = 0; kk < k; ++kk) out[static_cast<size_t>(n * k + kk)] = dequantized(n, kk);
  }
  return out;
}

namespace {

double blockError(std::span<const float> w, std::span<const float> importance, const BlockParams& p, int bits) {
  double err = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const float q = static_cast<float>(quantizeValue(w[i], p, bits));
    const double d = static_cast<double>(w[i]) - static_cast<double>((q - static_cast<float>(p.zeroPoint)) * p.scale);
    err += (importance.empty() ? 1.0 : static_cast<double>(importance[i])) * d * d;
  }
  return err;
}

}  // namespace

BlockParams chooseBlockParams(std::span<const float> w, std::span<const float> importance, int bits, bool symmetric,
                              bool clipSearch) {
  const int qmax = (1 << bits) - 1;
  const int half = 1 << (bits - 1);
  float lo = 0, hi = 0;
  for (float v : w) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (symmetric) {
    const float m = std::max(-lo, hi);
    if (m == 0) return {1.0f, half};
    BlockParams best{m / static_cast<float>(half - 1), half};
    if (!clipSearch) return best;
    double bestErr = blockError(w, importance, best, bits);
    for (int step = 0; step <= 10; ++step) {
      const float r = 1.0f - 0.05f * static_cast<float>(step);
      for (int d : {half - 1, half}) {
        BlockParams p{m * r / static_cast<float>(d), half};
        const double e = blockError(w, importance, p, bits);
        if (e < bestErr) {
          bestErr = e;
          best = p;
        }
      }
    }
    return best;
  }
  // The range always holds 0 (lo <= 0 <= hi, as computed above), so that the zero point is a
  // code in [0, qmax] and no value is clamped away.
  if (hi == lo) return {1.0f, 0};
  auto paramsFor = [&](float l, float h) {
    const float s = (h - l) / static_cast<float>(qmax);
    int z = static_cast<int>(std::nearbyint(-l / s));
    return BlockParams{s, std::clamp(z, 0, qmax)};
  };
  BlockParams best = paramsFor(lo, hi);
  if (!clipSearch) return best;
  double bestErr = blockError(w, importance, best, bits);
  for (int step = 1; step <= 10; ++step) {
    const float r = 1.0f - 0.05f * static_cast<float>(step);
    for (auto [l, h] : {std::pair{lo * r, hi * r}, std::pair{lo * r, hi}, std::pair{lo, hi * r}}) {
      BlockParams p = paramsFor(l, h);
      const double e = blockError(w, importance, p, bits);
      if (e < bestErr) {
        bestErr = e;
        best = p;
      }
    }
  }
  return best;
}

BlockQuantized makeBlockQuantized(int64_t rows, int64_t k, const BlockConfig& config) {
  BlockQuantized q;
  q.rows = rows;
  q.k = k;
  q.block = config.block == 0 ? k : config.block;
  q.blocks = (k + q.block - 1) / q.block;
  q.bits = config.bits;
  q.symmetric = config.symmetric;
  q.codes.assign(static_cast<size_t>(rows * k), 0);
  q.scales.assign(static_cast<size_t>(rows * q.blocks), 1.0f);
  q.zeroPoints.assign(static_cast<size_t>(rows * q.blocks), 0);
  return q;
}

BlockQuantized quantizeRtn(std::span<const float> w, int64_t rows, int64_t k, const BlockConfig& config,
                           std::span<const float> importance) {
  BlockQuantized q = makeBlockQuantized(rows, k, config);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t b = 0; b < q.blocks; ++b) {
      const int64_t begin = b * q.block, len = std::min(q.block, k - begin);
      std::span<const float> values = w.subspan(static_cast<size_t>(n * k + begin), static_cast<size_t>(len));
      std::span<const float> imp =
          importance.empty() ? std::span<const float>{} : importance.subspan(static_cast<size_t>(begin), static_cast<size_t>(len));
      BlockParams p = chooseBlockParams(values, imp, config.bits, config.symmetric, config.clipSearch);
      q.scales[static_cast<size_t>(n * q.blocks + b)] = p.scale;
      q.zeroPoints[static_cast<size_t>(n * q.blocks + b)] = static_cast<uint8_t>(p.zeroPoint);
      for (int64_t i = 0; i < len; ++i) {
        q.codes[static_cast<size_t>(n * k + begin + i)] = quantizeValue(values[static_cast<size_t>(i)], p, config.bits);
      }
    }
  }
  return q;
}

ir::Tensor packMatMulNBitsWeight(const BlockQuantized& q) {
  const int64_t blob = q.block * q.bits / 8;
  ir::Tensor t(ir::DataType::kUint8, {q.rows, q.blocks, blob});
  uint8_t* dst = t.mutableData<uint8_t>();
  for (int64_t n = 0; n < q.rows; ++n) {
    for (int64_t b = 0; b < q.blocks; ++b) {
      const uint8_t zp = q.zeroPoints[static_cast<size_t>(n * q.blocks + b)];
      auto code = [&](int64_t kk) { return kk < q.k ? q.codes[static_cast<size_t>(n * q.k + kk)] : zp; };
      uint8_t* out = dst + (n * q.blocks + b) * blob;
      for (int64_t j = 0; j < blob; ++j) {
        if (q.bits == 8) {
          out[j] = code(b * q.block + j);
        } else {
          const int64_t kk = b * q.block + 2 * j;
          out[j] = static_cast<uint8_t>((code(kk) & 0x0F) | ((code(kk + 1) & 0x0F) << 4));
        }
      }
    }
  }
  return t;
}

ir::Tensor packMatMulNBitsZeroPoints(const BlockQuantized& q) {
  const int64_t perRow = (q.blocks * q.bits + 7) / 8;
  ir::Tensor t(ir::DataType::kUint8, {q.rows, perRow});
  uint8_t* dst = t.mutableData<uint8_t>();
  std::memset(dst, 0, static_cast<size_t>(q.rows * perRow));
  for (int64_t n = 0; n < q.rows; ++n) {
    for (int64_t b = 0; b < q.blocks; ++b) {
      const uint8_t zp = q.zeroPoints[static_cast<size_t>(n * q.blocks + b)];
      if (q.bits == 8) {
        dst[n * perRow + b] = zp;
      } else {
        dst[n * perRow + b / 2] |= static_cast<uint8_t>((zp & 0x0F) << ((b % 2) * 4));
      }
    }
  }
  return t;
}

QdqTensors toQdqTensors(const BlockQuantized& q, bool transposed) {
  const bool four = q.bits == 4;
  const ir::DataType valueType = q.symmetric ? (four ? ir::DataType::kInt4 : ir::DataType::kInt8)
                                             : (four ? ir::DataType::kUint4 : ir::DataType::kUint8);
  const std::vector<int64_t> dims = transposed ? std::vector<int64_t>{q.k, q.rows} : std::vector<int64_t>{q.rows, q.k};
  const std::vector<int64_t> scaleDims =
      transposed ? std::vector<int64_t>{q.blocks, q.rows} : std::vector<int64_t>{q.rows, q.blocks};
  // The stored value of (n, k): the signed value for symmetric blocks, the code otherwise.
  auto stored = [&](int64_t n, int64_t kk) -> int {
    const int code = q.codes[static_cast<size_t>(n * q.k + kk)];
    return q.symmetric ? code - q.zeroPoints[static_cast<size_t>(n * q.blocks + kk / q.block)] : code;
  };
  auto fill = [&](ir::Tensor& t, int64_t d0, int64_t d1, auto valueAt) {
    uint8_t* dst = t.mutableData<uint8_t>();
    if (!four) {
      for (int64_t i = 0; i < d0; ++i) {
        for (int64_t j = 0; j < d1; ++j) dst[i * d1 + j] = static_cast<uint8_t>(valueAt(i, j));
      }
      return;
    }
    std::memset(dst, 0, t.byteSize());
    for (int64_t i = 0; i < d0; ++i) {
      for (int64_t j = 0; j < d1; ++j) {
        const int64_t at = i * d1 + j;
        dst[at / 2] |= static_cast<uint8_t>((valueAt(i, j) & 0x0F) << ((at % 2) * 4));
      }
    }
  };
  QdqTensors out;
  out.values = ir::Tensor(valueType, dims);
  if (transposed) {
    fill(out.values, q.k, q.rows, [&](int64_t kk, int64_t n) { return stored(n, kk); });
  } else {
    fill(out.values, q.rows, q.k, [&](int64_t n, int64_t kk) { return stored(n, kk); });
  }
  std::vector<float> scales(q.scales.size());
  for (int64_t n = 0; n < q.rows; ++n) {
    for (int64_t b = 0; b < q.blocks; ++b) {
      scales[static_cast<size_t>(transposed ? b * q.rows + n : n * q.blocks + b)] = q.scales[static_cast<size_t>(n * q.blocks + b)];
    }
  }
  out.scales = ir::Tensor::fromVector(ir::DataType::kFloat, scaleDims, scales);
  if (!q.symmetric) {
    ir::Tensor zp(four ? ir::DataType::kUint4 : ir::DataType::kUint8, scaleDims);
    auto zpAt = [&](int64_t n, int64_t b) { return static_cast<int>(q.zeroPoints[static_cast<size_t>(n * q.blocks + b)]); };
    if (transposed) {
      fill(zp, q.blocks, q.rows, [&](int64_t b, int64_t n) { return zpAt(n, b); });
    } else {
      fill(zp, q.rows, q.blocks, zpAt);
    }
    out.zeroPoints = std::move(zp);
  }
  return out;
}

double relativeWeightError(std::span<const float> w, const BlockQuantized& q, std::span<const float> importance) {
  double err = 0, ref = 0;
  for (int64_t n = 0; n < q.rows; ++n) {
    for (int64_t kk = 0; kk < q.k; ++kk) {
      const double h = importance.empty() ? 1.0 : static_cast<double>(importance[static_cast<size_t>(kk)]);
      const double v = w[static_cast<size_t>(n * q.k + kk)];
      const double d = v - static_cast<double>(q.dequantized(n, kk));
      err += h * d * d;
      ref += h * v * v;
    }
  }
  return ref > 0 ? err / ref : err;
}

}  // namespace whittle::quant
