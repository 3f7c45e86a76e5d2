#include "cpu/conv_reference.h"

#include <cmath>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>

namespace whittle::runtime::cpu {

namespace {

/// Number of elements of `dims` from index `from` on.
int64_t product(const std::vector<int64_t>& dims, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < dims.size(); ++i) p *= dims[i];
  return p;
}

/// Advances a multi-index `idx` over `dims`; false when it wrapped around.
bool nextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t k = idx.size(); k-- > 0;) {
    if (++idx[k] < dims[k]) return true;
    idx[k] = 0;
  }
  return false;
}

}  // namespace

template <typename T>
void referenceConv(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
  size_t n = g.src.size() - 2;
  int64_t batch = g.src[0], cin = g.src[1], cout = g.dst[1];
  int64_t cinG = cin / g.group, coutG = cout / g.group;
  std::vector<int64_t> inSpatial(g.src.begin() + 2, g.src.end()), outSpatial(g.dst.begin() + 2, g.dst.end());
  int64_t inSize = product(inSpatial), outSize = product(outSpatial), kSize = product(g.kernel);
  if (outSize == 0 || batch == 0 || cout == 0) return;
  std::vector<int64_t> o(n), k(n);
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t m = 0; m < cout; ++m) {
      int64_t grp = m / coutG;
      std::fill(o.begin(), o.end(), 0);
      int64_t oi = 0;
      do {
        double acc = b != nullptr ? static_cast<double>(b[m]) : 0.0;
        for (int64_t c = 0; c < cinG; ++c) {
          const T* xc = x + (bi * cin + grp * cinG + c) * inSize;
          const T* wc = w + (m * cinG + c) * kSize;
          std::fill(k.begin(), k.end(), 0);
          int64_t ki = 0;
          do {
            int64_t offset = 0;
            bool inside = true;
            for (size_t d = 0; d < n && inside; ++d) {
              int64_t pos = o[d] * g.strides[d] + k[d] * g.dilations[d] - g.padBegin[d];
              inside = pos >= 0 && pos < inSpatial[d];
              offset = offset * inSpatial[d] + pos;
            }
            if (inside) acc += static_cast<double>(xc[offset]) * static_cast<double>(wc[ki]);
            ++ki;
          } while (nextIndex(k, g.kernel));
        }
        y[(bi * cout + m) * outSize + oi] = static_cast<T>(acc);
        ++oi;
      } while (nextIndex(o, outSpatial));
    }
  }
}

template <typename T>
void referenceConvTranspose(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
  size_t n = g.src.size() - 2;
  int64_t batch = g.src[0], cin = g.src[1], cout = g.dst[1];
  int64_t cinG = cin / g.group, coutG = cout / g.group;
  std::vector<int64_t> inSpatial(g.src.begin() + 2, g.src.end()), outSpatial(g.dst.begin() + 2, g.dst.end());
  int64_t inSize = product(inSpatial), outSize = product(outSpatial), kSize = product(g.kernel);
  if (outSize == 0 || batch == 0 || cout == 0) return;
  std::vector<double> acc(static_cast<size_t>(outSize));
  std::vector<int64_t> i(n), k(n);
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t m = 0; m < cout; ++m) {
      int64_t grp = m / coutG, mg = m % coutG;
      std::fill(acc.begin(), acc.end(), b != nullptr ? static_cast<double>(b[m]) : 0.0);
      for (int64_t c = 0; c < cinG; ++c) {
        int64_t ci = grp * cinG + c;
        const T* xc = x + (bi * cin + ci) * inSize;
        const T* wc = w + (ci * coutG + mg) * kSize;  // W is [C, M/G, k...]
        if (inSize == 0) continue;
        std::fill(i.begin(), i.end(), 0);
        int64_t ii = 0;
        do {
          double xv = static_cast<double>(xc[ii]);
          std::fill(k.begin(), k.end(), 0);
          int64_t ki = 0;
          do {
            int64_t offset = 0;
            bool inside = true;
            for (size_t d = 0; d < n && inside; ++d) {
              int64_t pos = i[d] * g.strides[d] + k[d] * g.dilations[d] - g.padBegin[d];
              inside = pos >= 0 && pos < outSpatial[d];
              offset = offset * outSpatial[d] + pos;
            }
            if (inside) acc[static_cast<size_t>(offset)] += xv * static_cast<double>(wc[ki]);
            ++ki;
          } while (nextIndex(k, g.kernel));
          ++ii;
        } while (nextIndex(i, inSpatial));
      }
      T* yc = y + (bi * cout + m) * outSize;
      for (int64_t j = 0; j < outSize; ++j) yc[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
    }
  }
}

template void referenceConv<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void referenceConv<double>(const ConvGeometry&, const double*, const double*, const double*, double*);
template void referenceConvTranspose<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void referenceConvTranspose<double>(const ConvGeometry&, const double*, const double*, const double*, double*);

bool isFusableActivation(const std::string& op) {
  return op == "Relu" || op == "LeakyRelu" || op == "Clip" || op == "Sigmoid" || op == "Tanh" || op == "HardSigmoid" ||
         op == "HardSwish" || op == "Elu" || op == "Swish" || op == "Gelu" || op == "Linear";
}

Expected<std::vector<ConvPostOp>> readConvPostOps(const ir::Node& node) {
  std::vector<ConvPostOp> ops;
  const ir::Attribute* names = node.findAttribute("post_ops");
  if (names == nullptr) return ops;
  std::vector<float> params = node.attrFloats("post_op_params");
  if (params.size() != 2 * names->strings.size()) {
    return invalidInput(node.describe() + ": post_op_params needs two values per entry of post_ops");
  }
  int sums = 0;
  for (size_t i = 0; i < names->strings.size(); ++i) {
    ConvPostOp op{names->strings[i], params[2 * i], params[2 * i + 1]};
    if (op.isSum()) {
      ++sums;
    } else if (!isFusableActivation(op.op)) {
      return unimplemented(node.describe() + ": post-op '" + op.op + "' is not supported");
    }
    ops.push_back(op);
  }
  if (sums > 1) return invalidInput(node.describe() + ": at most one Sum post-op is supported");
  return ops;
}

void appendDnnlPostOps(const std::vector<ConvPostOp>& ops, dnnl::post_ops& chain) {
  using alg = dnnl::algorithm;
  for (const ConvPostOp& op : ops) {
    if (op.isSum()) {
      chain.append_sum(1.0f);
    } else if (op.op == "Relu") {
      chain.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f);
    } else if (op.op == "LeakyRelu") {
      chain.append_eltwise(1.0f, alg::eltwise_relu, op.alpha, 0.0f);
    } else if (op.op == "Clip") {
      chain.append_eltwise(1.0f, alg::eltwise_clip_v2, op.alpha, op.beta);
    } else if (op.op == "Sigmoid") {
      chain.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f);
    } else if (op.op == "Tanh") {
      chain.append_eltwise(1.0f, alg::eltwise_tanh, 0.0f, 0.0f);
    } else if (op.op == "HardSigmoid") {
      chain.append_eltwise(1.0f, alg::eltwise_linear, op.alpha, op.beta);
      chain.append_eltwise(1.0f, alg::eltwise_clip_v2, 0.0f, 1.0f);
    } else if (op.op == "HardSwish") {
      chain.append_eltwise(1.0f, alg::eltwise_hardswish, 0.0f, 0.0f);
    } else if (op.op == "Elu") {
      chain.append_eltwise(1.0f, alg::eltwise_elu, op.alpha, 0.0f);
    } else if (op.op == "Swish") {
      chain.append_eltwise(1.0f, alg::eltwise_swish, 1.0f, 0.0f);
    } else if (op.op == "Gelu") {
      chain.append_eltwise(1.0f, alg::eltwise_gelu_erf, 0.0f, 0.0f);
    } else if (op.op == "Linear") {
      chain.append_eltwise(1.0f, alg::eltwise_linear, op.alpha, op.beta);
    }
  }
}

double applyActivation(const ConvPostOp& op, double v) {
  if (op.op == "Relu") return v > 0 ? v : 0.0;
  if (op.op == "LeakyRelu") return v >= 0 ? v : v * op.alpha;
  if (op.op == "Clip") return std::min<double>(std::max<double>(v, op.alpha), op.beta);
  if (op.op == "Sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (op.op == "Tanh") return std::tanh(v);
  if (op.op == "HardSigmoid") return std::max(0.0, std::min(1.0, op.alpha * v + op.beta));
  if (op.op == "HardSwish") return v * std::max(0.0, std::min(1.0, v / 6.0 + 0.5));
  if (op.op == "Elu") return v >= 0 ? v : op.alpha * (std::exp(v) - 1.0);
  if (op.op == "Swish") return v / (1.0 + std::exp(-v));
  if (op.op == "Gelu") return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  if (op.op == "Linear") return op.alpha * v + op.beta;
  return v;
}

}  // namespace whittle::runtime::cpu
