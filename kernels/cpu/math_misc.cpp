// Det (opset 11) and Shrink (opset 9).
//
// Det: the determinant of each square matrix of X [..., M, M] (float32, float64, float16,
//   bfloat16), by LU decomposition with partial pivoting in double.
// Shrink: y = x + bias where x < -lambd, x - bias where x > lambd, else 0 (every numeric dtype;
//   computed in double and converted back, as ONNX Runtime does for integers).
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

/// The determinant of the m x m matrix `a` (row-major, destroyed).
double determinant(double* a, int64_t m) {
  double det = 1.0;
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t r = col + 1; r < m; ++r) {
      if (std::fabs(a[r * m + col]) > std::fabs(a[pivot * m + col])) pivot = r;
    }
    if (a[pivot * m + col] == 0.0) return 0.0;
    if (pivot != col) {
      for (int64_t k = 0; k < m; ++k) std::swap(a[col * m + k], a[pivot * m + k]);
      det = -det;
    }
    double p = a[col * m + col];
    det *= p;
    for (int64_t r = col + 1; r < m; ++r) {
      double f = a[r * m + col] / p;
      if (f == 0.0) continue;
      for (int64_t k = col + 1; k < m; ++k) a[r * m + k] -= f * a[col * m + k];
    }
  }
  return det;
}

KernelPtr makeDet(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType dt = x.dtype();
    if (dt != ir::DataType::kFloat && dt != ir::DataType::kDouble && dt != ir::DataType::kFloat16 &&
        dt != ir::DataType::kBFloat16)
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dt)) + " is not supported (float types are)");
    if (x.rank() < 2 || x.dims()[static_cast<size_t>(x.rank() - 1)] != x.dims()[static_cast<size_t>(x.rank() - 2)])
      return ctx.error("X must be [..., M, M], got " + shapeToString(x.dims()));
    int64_t m = x.dims().back();
    std::vector<int64_t> outDims(x.dims().begin(), x.dims().end() - 2);
    int64_t batch = 1;
    for (int64_t d : outDims) batch *= d;
    std::vector<double> in(static_cast<size_t>(x.numel()));
    ir::Tensor xf = dt == ir::DataType::kDouble ? x : toFloat32(x);
    for (int64_t i = 0; i < x.numel(); ++i)
      in[static_cast<size_t>(i)] = dt == ir::DataType::kDouble ? x.data<double>()[i] : static_cast<double>(xf.data<float>()[i]);
    std::vector<double> dets(static_cast<size_t>(batch));
#pragma omp parallel for schedule(static) if (batch > 16 && m >= 8)
    for (int64_t b = 0; b < batch; ++b) dets[static_cast<size_t>(b)] = determinant(in.data() + b * m * m, m);
    if (dt == ir::DataType::kDouble) {
      double* y = ctx.allocateOutput(0, dt, outDims).mutableData<double>();
      for (int64_t b = 0; b < batch; ++b) y[b] = dets[static_cast<size_t>(b)];
      return Status::ok();
    }
    ir::Tensor yf(ir::DataType::kFloat, outDims);
    float* yp = yf.mutableData<float>();
    for (int64_t b = 0; b < batch; ++b) yp[b] = static_cast<float>(dets[static_cast<size_t>(b)]);
    ctx.setOutput(0, dt == ir::DataType::kFloat ? yf : fromFloat32(yf, dt));
    return Status::ok();
  });
}

template <typename T>
void shrink(const T* x, T* y, int64_t n, double lambd, double bias) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    auto v = static_cast<double>(x[i]);
    double r = v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0);
    y[i] = static_cast<T>(r);
  }
}

KernelPtr makeShrink(const KernelCreateInfo& info) {
  double lambd = info.node.attrFloat("lambd", 0.5F), bias = info.node.attrFloat("bias", 0.0F);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType dt = x.dtype();
    if (dt == ir::DataType::kFloat16 || dt == ir::DataType::kBFloat16) {
      ir::Tensor xf = toFloat32(x);
      ir::Tensor yf(ir::DataType::kFloat, x.dims());
      shrink(xf.data<float>(), yf.mutableData<float>(), x.numel(), lambd, bias);
      ctx.setOutput(0, fromFloat32(yf, dt));
      return Status::ok();
    }
    if (dt == ir::DataType::kBool) return ctx.unsupported("dtype bool is not supported");
    ir::Tensor& y = ctx.allocateOutput(0, dt, x.dims());
    bool ok = dispatchNumeric(dt, [&](auto tag) {
      using T = decltype(tag);
      shrink(x.data<T>(), y.mutableData<T>(), x.numel(), lambd, bias);
    });
    if (!ok) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dt)) + " is not supported");
    return Status::ok();
  });
}

}  // namespace

void registerMathMiscKernels(KernelRegistry& registry) {
  registry.add("", "Det", 11, makeDet);
  registry.add("", "Shrink", 9, makeShrink);
}

}  // namespace whittle::runtime::cpu
