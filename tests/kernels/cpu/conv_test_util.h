#pragma once
// The reference of the conv kernel tests: an independent naive N-d convolution (and
// ConvTranspose) in double. Running models, random tensors and the tolerance checks come from
// tests/support/kernel_harness.h and tests/support/tolerance.h.

#include <algorithm>
#include <vector>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/tolerance.h"

namespace whittle::testing {

/// The product of dims[from:] (numel), under the name these tests used before tests/support/.
inline int64_t product(const std::vector<int64_t>& dims, size_t from = 0) { return numel(dims, from); }

/// A convolution spelled out: channels first, explicit pads, ONNX dilations.
struct NaiveConv {
  std::vector<int64_t> x, w;  ///< X [N, C, D...]; W [M, C/G, k...] (Conv) or [C, M/G, k...] (ConvTranspose)
  std::vector<int64_t> strides, dilations, padBegin, padEnd;
  int64_t group = 1;
  std::vector<int64_t> outputPadding;  ///< ConvTranspose only
};

inline std::vector<int64_t> naiveConvOutput(const NaiveConv& c) {
  std::vector<int64_t> y = {c.x[0], c.w[0]};
  for (size_t i = 0; i + 2 < c.x.size(); ++i) {
    int64_t extent = (c.w[i + 2] - 1) * c.dilations[i] + 1;
    y.push_back((c.x[i + 2] + c.padBegin[i] + c.padEnd[i] - extent) / c.strides[i] + 1);
  }
  return y;
}

inline std::vector<double> naiveConvRun(const NaiveConv& c, const std::vector<double>& x, const std::vector<double>& w,
                                        const std::vector<double>* b) {
  std::vector<int64_t> y = naiveConvOutput(c);
  size_t n = c.x.size() - 2;
  std::vector<int64_t> inSp(c.x.begin() + 2, c.x.end()), outSp(y.begin() + 2, y.end()), kSp(c.w.begin() + 2, c.w.end());
  int64_t cinG = c.x[1] / c.group, coutG = y[1] / c.group;
  std::vector<double> out(static_cast<size_t>(numel(y)));
  size_t oi = 0;
  for (int64_t bi = 0; bi < y[0]; ++bi) {
    for (int64_t m = 0; m < y[1]; ++m) {
      std::vector<int64_t> o(n, 0);
      do {
        double acc = b != nullptr ? (*b)[static_cast<size_t>(m)] : 0.0;
        for (int64_t ci = 0; ci < cinG; ++ci) {
          int64_t cin = (m / coutG) * cinG + ci;
          std::vector<int64_t> k(n, 0);
          int64_t ki = 0;
          do {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < n; ++d) {
              int64_t p = o[d] * c.strides[d] + k[d] * c.dilations[d] - c.padBegin[d];
              inside = inside && p >= 0 && p < inSp[d];
              off = off * inSp[d] + p;
            }
            if (inside) {
              acc += x[static_cast<size_t>((bi * c.x[1] + cin) * numel(inSp) + off)] *
                     w[static_cast<size_t>((m * cinG + ci) * numel(kSp) + ki)];
            }
            ++ki;
          } while (nextIndex(k, kSp));
        }
        out[oi++] = acc;
      } while (nextIndex(o, outSp));
    }
  }
  return out;
}

/// ConvTranspose as the scatter of every input element (pads taken off the begin, the output
/// sized by `outSpatial`).
inline std::vector<double> naiveConvTransposeRun(const NaiveConv& c, const std::vector<int64_t>& outSpatial,
                                                 const std::vector<double>& x, const std::vector<double>& w,
                                                 const std::vector<double>* b) {
  size_t n = c.x.size() - 2;
  int64_t coutG = c.w[1], cout = coutG * c.group, cinG = c.x[1] / c.group;
  std::vector<int64_t> inSp(c.x.begin() + 2, c.x.end()), kSp(c.w.begin() + 2, c.w.end());
  int64_t outSize = numel(outSpatial);
  std::vector<double> out(static_cast<size_t>(c.x[0] * cout * outSize), 0.0);
  for (int64_t bi = 0; bi < c.x[0]; ++bi) {
    for (int64_t m = 0; m < cout; ++m) {
      double* yp = out.data() + (bi * cout + m) * outSize;
      if (b != nullptr) std::fill(yp, yp + outSize, (*b)[static_cast<size_t>(m)]);
      int64_t g = m / coutG;
      for (int64_t ci = 0; ci < cinG; ++ci) {
        int64_t cin = g * cinG + ci;
        std::vector<int64_t> i(n, 0);
        int64_t ii = 0;
        do {
          double xv = x[static_cast<size_t>((bi * c.x[1] + cin) * numel(inSp) + ii)];
          std::vector<int64_t> k(n, 0);
          int64_t ki = 0;
          do {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < n; ++d) {
              int64_t p = i[d] * c.strides[d] + k[d] * c.dilations[d] - c.padBegin[d];
              inside = inside && p >= 0 && p < outSpatial[d];
              off = off * outSpatial[d] + p;
            }
            if (inside) yp[off] += xv * w[static_cast<size_t>((cin * coutG + m % coutG) * numel(kSp) + ki)];
            ++ki;
          } while (nextIndex(k, kSp));
          ++ii;
        } while (nextIndex(i, inSp));
      }
    }
  }
  return out;
}

}  // namespace whittle::testing
