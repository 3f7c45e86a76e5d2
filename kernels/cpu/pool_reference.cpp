#include "cpu/pool_reference.h"

#include <cmath>
#include <limits>

#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

Expected<PoolAttrs> readPoolAttrs(const ir::Node& node) {
  PoolAttrs a;
  WH_ASSIGN_OR_RETURN(a.autoPad, parseAutoPad(node));
  a.kernelShape = node.attrInts("kernel_shape");
  if (a.kernelShape.empty()) return invalidInput(node.describe() + ": kernel_shape is required");
  a.strides = node.attrInts("strides");
  a.dilations = node.attrInts("dilations");
  a.pads = node.attrInts("pads");
  a.ceilMode = node.attrInt("ceil_mode", 0) != 0;
  a.countIncludePad = node.attrInt("count_include_pad", 0) != 0;
  a.storageOrder = node.attrInt("storage_order", 0);
  a.p = static_cast<float>(node.attrInt("p", 2));
  if (const ir::Attribute* p = node.findAttribute("p"); p != nullptr && p->kind == ir::Attribute::Kind::kFloat) {
    a.p = p->f;  // LpPool-1 had a float p
  }
  for (int64_t k : a.kernelShape) {
    if (k < 1) return invalidInput(node.describe() + ": kernel_shape must be positive");
  }
  for (int64_t s : a.strides) {
    if (s < 1) return invalidInput(node.describe() + ": strides must be positive");
  }
  for (int64_t d : a.dilations) {
    if (d < 1) return invalidInput(node.describe() + ": dilations must be positive");
  }
  for (int64_t p : a.pads) {
    if (p < 0) return invalidInput(node.describe() + ": pads must not be negative");
  }
  if (a.storageOrder != 0 && a.storageOrder != 1)
    return invalidInput(node.describe() + ": storage_order must be 0 or 1");
  return a;
}

Expected<PoolGeometry> resolvePool(const PoolAttrs& attrs, const std::vector<int64_t>& x, const std::string& what) {
  size_t n = attrs.kernelShape.size();
  if (x.size() != n + 2) {
    return invalidInput(what + ": input " + shapeToString(x) + " does not match kernel_shape " +
                        shapeToString(attrs.kernelShape));
  }
  PoolGeometry g;
  g.src = x;
  g.kernel = attrs.kernelShape;
  auto strides = spatialList(attrs.strides, n, 1);
  auto dilations = spatialList(attrs.dilations, n, 1);
  if (!strides || !dilations) return invalidInput(what + ": strides and dilations need one value per spatial dim");
  if (!attrs.pads.empty() && attrs.pads.size() != 2 * n)
    return invalidInput(what + ": pads needs 2 values per spatial dim");
  g.strides = *strides;
  g.dilations = *dilations;
  g.padBegin.assign(n, 0);
  g.padEnd.assign(n, 0);
  g.dst = {x[0], x[1]};
  for (size_t i = 0; i < n; ++i) {
    int64_t in = x[i + 2], s = g.strides[i];
    int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    int64_t out = 0;
    switch (attrs.autoPad) {
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        out = (in + s - 1) / s;
        int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
        g.padBegin[i] = attrs.autoPad == AutoPad::kSameUpper ? total / 2 : total - total / 2;
        g.padEnd[i] = total - g.padBegin[i];
        break;
      }
      case AutoPad::kValid:
        out = in >= extent ? (in - extent) / s + 1 : 0;
        break;
      case AutoPad::kNotSet: {
        if (!attrs.pads.empty()) {
          g.padBegin[i] = attrs.pads[i];
          g.padEnd[i] = attrs.pads[n + i];
        }
        int64_t span = in + g.padBegin[i] + g.padEnd[i] - extent;
        if (span < 0) {
          out = 0;
        } else if (attrs.ceilMode) {
          out = (span + s - 1) / s + 1;
          // The last window must start inside the input or its begin padding.
          if ((out - 1) * s >= in + g.padBegin[i]) --out;
        } else {
          out = span / s + 1;
        }
        break;
      }
    }
    if (out < 1 && in > 0) {
      return invalidInput(what + ": the pooling window " + shapeToString(g.kernel) + " does not fit input " +
                          shapeToString(x));
    }
    g.dst.push_back(std::max<int64_t>(out, 0));
  }
  g.padEndEffective = g.padEnd;
  for (size_t i = 0; i < n; ++i) {
    int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    int64_t needed = (g.dst[i + 2] - 1) * g.strides[i] + extent - x[i + 2] - g.padBegin[i];
    g.padEndEffective[i] = std::max(g.padEnd[i], needed);
  }
  return g;
}

namespace {

bool nextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t k = idx.size(); k-- > 0;) {
    if (++idx[k] < dims[k]) return true;
    idx[k] = 0;
  }
  return false;
}

}  // namespace

template <typename T>
void referencePool(const PoolGeometry& g, PoolKind kind, bool countIncludePad, float p, int64_t storageOrder,
                   const T* x, T* y, int64_t* indices) {
  size_t n = g.kernel.size();
  std::vector<int64_t> inSpatial(g.src.begin() + 2, g.src.end()), outSpatial(g.dst.begin() + 2, g.dst.end());
  int64_t inSize = 1, outSize = 1;
  for (int64_t d : inSpatial) inSize *= d;
  for (int64_t d : outSpatial) outSize *= d;
  int64_t planes = g.src[0] * g.src[1];
  if (outSize == 0 || planes == 0) return;
  std::vector<int64_t> o(n), k(n), pos(n);
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * inSize;
    std::fill(o.begin(), o.end(), 0);
    int64_t oi = 0;
    do {
      double acc = 0;
      T best = std::numeric_limits<T>::lowest();
      int64_t bestIndex = -1;
      int64_t count = 0, padded = 0;
      std::fill(k.begin(), k.end(), 0);
      do {
        bool inside = true, insidePads = true;
        int64_t offset = 0;
        for (size_t d = 0; d < n; ++d) {
          pos[d] = o[d] * g.strides[d] + k[d] * g.dilations[d] - g.padBegin[d];
          inside = inside && pos[d] >= 0 && pos[d] < inSpatial[d];
          insidePads = insidePads && pos[d] < inSpatial[d] + g.padEnd[d];
          offset = offset * inSpatial[d] + pos[d];
        }
        if (insidePads) ++padded;
        if (!inside) continue;
        ++count;
        T v = xp[offset];
        if (kind == PoolKind::kMax) {
          if (bestIndex < 0 || v > best) {
            best = v;
            if (storageOrder == 0) {
              bestIndex = offset;
            } else {
              bestIndex = 0;
              for (size_t d = n; d-- > 0;) bestIndex = bestIndex * inSpatial[d] + pos[d];
            }
          }
        } else if (kind == PoolKind::kAverage) {
          acc += static_cast<double>(v);
        } else {
          acc += std::pow(std::fabs(static_cast<double>(v)), static_cast<double>(p));
        }
      } while (nextIndex(k, g.kernel));
      T* out = y + plane * outSize + oi;
      if (kind == PoolKind::kMax) {
        *out = best;
        if (indices != nullptr) indices[plane * outSize + oi] = bestIndex < 0 ? -1 : plane * inSize + bestIndex;
      } else if (kind == PoolKind::kAverage) {
        int64_t divisor = countIncludePad ? padded : count;
        *out = static_cast<T>(divisor > 0 ? acc / static_cast<double>(divisor) : 0.0);
      } else {
        *out = static_cast<T>(std::pow(acc, 1.0 / static_cast<double>(p)));
      }
      ++oi;
    } while (nextIndex(o, outSpatial));
  }
}

#define WH_INSTANTIATE_POOL(T) \
  template void referencePool<T>(const PoolGeometry&, PoolKind, bool, float, int64_t, const T*, T*, int64_t*);
WH_INSTANTIATE_POOL(float)
WH_INSTANTIATE_POOL(double)
WH_INSTANTIATE_POOL(int8_t)
WH_INSTANTIATE_POOL(uint8_t)
WH_INSTANTIATE_POOL(int16_t)
WH_INSTANTIATE_POOL(uint16_t)
WH_INSTANTIATE_POOL(int32_t)
WH_INSTANTIATE_POOL(int64_t)
#undef WH_INSTANTIATE_POOL

}  // namespace whittle::runtime::cpu
