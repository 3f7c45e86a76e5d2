#include "support/nbits_data.h"

#include <algorithm>

namespace whittle::testing {

using ir::DataType;

NBitsData makeData(const NBitsCase& c, std::mt19937_64& rng) {
  NBitsData d;
  const int64_t blocks = (c.k + c.block - 1) / c.block, blob = c.block * c.bits / 8;
  const int32_t qmax = (1 << c.bits) - 1;
  std::uniform_int_distribution<int32_t> qd(0, qmax);
  std::uniform_real_distribution<float> sd(0.001f, 0.02f), ad(-1.0f, 1.0f);
  d.b = ir::Tensor(DataType::kUint8, {c.n, blocks, blob});
  auto* bq = reinterpret_cast<uint8_t*>(d.b.mutableRawData());
  std::fill(bq, bq + d.b.numel(), uint8_t{0});
  std::vector<int32_t> q(static_cast<size_t>(c.n * blocks * c.block));
  for (int64_t col = 0; col < c.n; ++col) {
    for (int64_t k = 0; k < blocks * c.block; ++k) {
      const int32_t v = qd(rng);
      q[static_cast<size_t>(col * blocks * c.block + k)] = v;
      uint8_t* dst = bq + col * blocks * blob;
      if (c.bits == 4) {
        dst[k / 2] |= static_cast<uint8_t>(v << ((k & 1) * 4));
      } else {
        dst[k] = static_cast<uint8_t>(v);
      }
    }
  }
  d.scales = ir::Tensor(DataType::kFloat, {c.n, blocks});
  for (int64_t i = 0; i < c.n * blocks; ++i) d.scales.mutableData<float>()[i] = sd(rng);
  std::vector<double> z(static_cast<size_t>(c.n * blocks), static_cast<double>(1 << (c.bits - 1)));
  if (c.zeroPoints && c.floatZeroPoints) {
    d.zp = ir::Tensor(DataType::kFloat, {c.n * blocks});
    std::uniform_real_distribution<float> zd(0.0f, static_cast<float>(qmax));
    for (size_t i = 0; i < z.size(); ++i) d.zp.mutableData<float>()[i] = static_cast<float>(z[i] = zd(rng));
  } else if (c.zeroPoints) {
    const int64_t perCol = (blocks * c.bits + 7) / 8;
    d.zp = ir::Tensor(DataType::kUint8, {c.n * perCol});
    auto* zq = reinterpret_cast<uint8_t*>(d.zp.mutableRawData());
    std::fill(zq, zq + d.zp.numel(), uint8_t{0});
    for (int64_t col = 0; col < c.n; ++col) {
      for (int64_t bl = 0; bl < blocks; ++bl) {
        const int32_t v = qd(rng);
        z[static_cast<size_t>(col * blocks + bl)] = v;
        if (c.bits == 4) {
          zq[col * perCol + bl / 2] |= static_cast<uint8_t>(v << ((bl & 1) * 4));
        } else {
          zq[col * perCol + bl] = static_cast<uint8_t>(v);
        }
      }
    }
  }
  d.w.resize(static_cast<size_t>(c.k * c.n));
  for (int64_t col = 0; col < c.n; ++col) {
    for (int64_t k = 0; k < c.k; ++k) {
      const size_t bi = static_cast<size_t>(col * blocks + k / c.block);
      d.w[static_cast<size_t>(k * c.n + col)] =
          (q[static_cast<size_t>(col * blocks * c.block + k)] - z[bi]) * static_cast<double>(d.scales.data<float>()[bi]);
    }
  }
  d.a.resize(static_cast<size_t>(c.m * c.k));
  for (float& v : d.a) v = ad(rng);
  if (c.bias) {
    d.bias.resize(static_cast<size_t>(c.n));
    for (float& v : d.bias) v = ad(rng);
  }
  return d;
}

}  // namespace whittle::testing
