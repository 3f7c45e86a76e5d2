// Softmax, LogSoftmax and Hardmax.
//
//   Softmax(x)[k]    = exp(x[k] - max) / sum_j exp(x[j] - max)
//   LogSoftmax(x)[k] = x[k] - max - log(sum_j exp(x[j] - max))
//   Hardmax(x)[k]    = 1 where k is the first index of the maximum, else 0
//
// along one axis. Opset < 13 coerces the input to 2-D at `axis` (default 1) and works on the
// flattened trailing dims; opset >= 13 works along the single axis `axis` (default -1). Both
// are the same loop over a [outer, n, inner] view: opset < 13 is the case inner = 1.
//
// float32 rows (inner = 1) and columns (inner > 1) have AVX-512 kernels with a polynomial
// exp (relative error about 1e-7) used when the CPU has AVX-512; the plain loops below are
// the reference and the fallback. float16/bfloat16 are widened to float32; float64 uses the
// reference in double.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/normalization_internal.h"

namespace whittle::runtime::cpu {
namespace {

using ir::DataType;

enum class SoftmaxMode { kSoftmax, kLogSoftmax, kHardmax };

// Work below this many elements runs on one thread.
constexpr int64_t kParallelThreshold = 32768;

// ---------------------------------------------------------------------------------------
// Reference: plain loops over [outer, n, inner], accumulating in T.

template <typename T>
void softmaxReference(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, SoftmaxMode mode) {
#pragma omp parallel for if (outer * n * inner > kParallelThreshold)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* xp = x + o * n * inner + i;
      T* yp = y + o * n * inner + i;
      T mx = xp[0];
      int64_t arg = 0;
      for (int64_t k = 1; k < n; ++k) {
        if (xp[k * inner] > mx) {
          mx = xp[k * inner];
          arg = k;
        }
      }
      if (mode == SoftmaxMode::kHardmax) {
        for (int64_t k = 0; k < n; ++k) yp[k * inner] = k == arg ? T(1) : T(0);
        continue;
      }
      T sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        T e = std::exp(xp[k * inner] - mx);
        if (mode == SoftmaxMode::kSoftmax) yp[k * inner] = e;
        sum += e;
      }
      if (mode == SoftmaxMode::kSoftmax) {
        T inv = T(1) / sum;
        for (int64_t k = 0; k < n; ++k) yp[k * inner] *= inv;
      } else {
        // (x - max) - log(sum): subtracting max first keeps large inputs exact.
        T logSum = std::log(sum);
        for (int64_t k = 0; k < n; ++k) yp[k * inner] = (xp[k * inner] - mx) - logSum;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// AVX-512 float32 kernels.

#define WH_AVX512 __attribute__((target("avx512f")))
// GCC 12 flags the intrinsics' own _mm512_undefined_ps() (a self-initialised variable).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

/// exp of 16 floats: Cody-Waite range reduction to [-ln2/2, ln2/2] and the Cephes degree-6
/// polynomial; inputs below -87.34 give 0 (no denormals), above 88.38 give about 2.4e38,
/// NaN gives NaN.
WH_AVX512 inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __m512 hi = _mm512_set1_ps(88.37626f);
  // Unordered compare and min(hi, x) (which returns x when it is NaN) let NaN through.
  const __mmask16 inRange = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);
  x = _mm512_min_ps(hi, x);
  __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
  f = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), f);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(f, f), _mm512_add_ps(f, _mm512_set1_ps(1.f)));
  return _mm512_maskz_scalef_ps(inRange, p, fx);
}

WH_AVX512 inline __mmask16 tailMask(int64_t count) {
  return static_cast<__mmask16>((1u << count) - 1u);
}

/// Softmax or LogSoftmax of one contiguous row of n floats; returns the row's maximum.
WH_AVX512 float softmaxRowAvx512(const float* xp, float* yp, int64_t n, bool log) {
  const int64_t body = n & ~int64_t{15};
  const __mmask16 tail = tailMask(n - body);
  // Two vectors per step: independent chains keep both FMA ports busy.
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vmax2 = vmax;
  int64_t k = 0;
  for (; k + 32 <= body; k += 32) {
    vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(xp + k));
    vmax2 = _mm512_max_ps(vmax2, _mm512_loadu_ps(xp + k + 16));
  }
  if (k < body) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(xp + k));
  vmax = _mm512_max_ps(vmax, vmax2);
  if (tail) vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, xp + body));
  const float mx = _mm512_reduce_max_ps(vmax);
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 vsum = _mm512_setzero_ps();
  __m512 vsum2 = vsum;
  for (k = 0; k + 32 <= body; k += 32) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(xp + k), vmx));
    __m512 e2 = exp16(_mm512_sub_ps(_mm512_loadu_ps(xp + k + 16), vmx));
    if (!log) {
      _mm512_storeu_ps(yp + k, e);
      _mm512_storeu_ps(yp + k + 16, e2);
    }
    vsum = _mm512_add_ps(vsum, e);
    vsum2 = _mm512_add_ps(vsum2, e2);
  }
  if (k < body) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(xp + k), vmx));
    if (!log) _mm512_storeu_ps(yp + k, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  vsum = _mm512_add_ps(vsum, vsum2);
  if (tail) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xp + body), vmx));
    if (!log) _mm512_mask_storeu_ps(yp + body, tail, e);
    vsum = _mm512_mask_add_ps(vsum, tail, vsum, e);
  }
  const float sum = _mm512_reduce_add_ps(vsum);
  if (log) {
    const __m512 logSum = _mm512_set1_ps(std::log(sum));
    for (k = 0; k < body; k += 16) {
      _mm512_storeu_ps(yp + k, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xp + k), vmx), logSum));
    }
    if (tail) {
      _mm512_mask_storeu_ps(yp + body, tail,
                            _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xp + body), vmx), logSum));
    }
  } else {
    const __m512 inv = _mm512_set1_ps(1.f / sum);
    for (k = 0; k < body; k += 16) _mm512_storeu_ps(yp + k, _mm512_mul_ps(_mm512_loadu_ps(yp + k), inv));
    if (tail) _mm512_mask_storeu_ps(yp + body, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, yp + body), inv));
  }
  return mx;
}

/// Softmax or LogSoftmax over the middle axis of [outer, n, inner] for the 16 columns of
/// `inner` from i0 on (fewer at the end) of outer index o: each lane runs the row algorithm on
/// its own column.
WH_AVX512 void softmaxColumnBlockAvx512(const float* x, float* y, int64_t o, int64_t i0, int64_t n, int64_t inner,
                                        bool log) {
  const __mmask16 m = inner - i0 >= 16 ? static_cast<__mmask16>(0xFFFF) : tailMask(inner - i0);
  const float* xp = x + o * n * inner + i0;
  float* yp = y + o * n * inner + i0;
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t k = 0; k < n; ++k) vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, xp + k * inner));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; ++k) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xp + k * inner), vmax));
    if (!log) _mm512_mask_storeu_ps(yp + k * inner, m, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  if (log) {
    // log of the 16 sums, one lane at a time (n exps amortise it).
    alignas(64) float sums[16];
    _mm512_store_ps(sums, vsum);
    for (float& s : sums) s = std::log(s);
    const __m512 logSum = _mm512_load_ps(sums);
    for (int64_t k = 0; k < n; ++k) {
      __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xp + k * inner), vmax);
      _mm512_mask_storeu_ps(yp + k * inner, m, _mm512_sub_ps(v, logSum));
    }
  } else {
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_mask_mov_ps(_mm512_set1_ps(1.f), m, vsum));
    for (int64_t k = 0; k < n; ++k) {
      _mm512_mask_storeu_ps(yp + k * inner, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yp + k * inner), inv));
    }
  }
}

#pragma GCC diagnostic pop

// The parallel loops stay outside the target("avx512f") functions: clang 14 outlines an
// OpenMP region into a function without the caller's target attribute, where __m512 is
// not allowed.

/// Softmax or LogSoftmax of `rows` contiguous rows of n floats.
void softmaxRowsAvx512(const float* x, float* y, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for if (rows * n > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) softmaxRowAvx512(x + r * n, y + r * n, n, log);
}

/// Softmax or LogSoftmax over the middle axis of [outer, n, inner], 16 columns at a time.
void softmaxColumnsAvx512(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t blocks = (inner + 15) / 16;
#pragma omp parallel for if (outer * n * inner > kParallelThreshold)
  for (int64_t ob = 0; ob < outer * blocks; ++ob) {
    softmaxColumnBlockAvx512(x, y, ob / blocks, (ob % blocks) * 16, n, inner, log);
  }
}

/// float32 softmax family over [outer, n, inner], choosing the kernel.
void softmaxFloat(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, SoftmaxMode mode) {
  if (mode != SoftmaxMode::kHardmax && haveAvx512()) {
    const bool log = mode == SoftmaxMode::kLogSoftmax;
    // Rows shorter than a vector waste most lanes; the column kernel needs inner > 1.
    if (inner == 1 && n >= 16) return softmaxRowsAvx512(x, y, outer, n, log);
    if (inner >= 8) return softmaxColumnsAvx512(x, y, outer, n, inner, log);
  }
  softmaxReference(x, y, outer, n, inner, mode);
}

// ---------------------------------------------------------------------------------------
// The kernel.

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(SoftmaxMode mode, int64_t axis, bool coerce2d) : mode_(mode), axis_(axis), coerce2d_(coerce2d) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const DataType dtype = x.dtype();
    if (dtype != DataType::kFloat && dtype != DataType::kDouble && !isWidenedFloat(dtype)) {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dtype)) +
                             " is not supported (float32, float16, bfloat16, float64)");
    }
    const auto& dims = x.dims();
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis)
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t d = 0; d < x.rank(); ++d) {
      int64_t size = dims[static_cast<size_t>(d)];
      if (d < *axis) {
        outer *= size;
      } else if (d == *axis || coerce2d_) {
        n *= size;
      } else {
        inner *= size;
      }
    }
    ir::Tensor& y = ctx.allocateOutput(0, dtype, dims);
    if (y.numel() == 0) return Status::ok();
    if (dtype == DataType::kFloat) {
      softmaxFloat(x.data<float>(), y.mutableData<float>(), outer, n, inner, mode_);
    } else if (dtype == DataType::kDouble) {
      softmaxReference(x.data<double>(), y.mutableData<double>(), outer, n, inner, mode_);
    } else {
      const float* xf = floatView(x, scratchX_);
      if (scratchY_.size() < static_cast<size_t>(y.numel())) scratchY_.resize(static_cast<size_t>(y.numel()));
      softmaxFloat(xf, scratchY_.data(), outer, n, inner, mode_);
      narrowFromFloat(dtype, scratchY_.data(), y.mutableRawData(), y.numel());
    }
    return Status::ok();
  }

 private:
  SoftmaxMode mode_;
  int64_t axis_;
  bool coerce2d_;
  std::vector<float> scratchX_, scratchY_;
};

KernelFactory softmaxFactory(SoftmaxMode mode) {
  return [mode](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    const bool coerce2d = info.opset < 13;
    const int64_t axis = info.node.attrInt("axis", coerce2d ? 1 : -1);
    return std::unique_ptr<Kernel>(std::make_unique<SoftmaxKernel>(mode, axis, coerce2d));
  };
}

}  // namespace

float softmaxRowFloat(const float* x, float* y, int64_t n) {
  if (haveAvx512() && n >= 16) return softmaxRowAvx512(x, y, n, false);
  float mx = x[0];
  for (int64_t k = 1; k < n; ++k) mx = std::max(mx, x[k]);
  softmaxReference(x, y, 1, n, 1, SoftmaxMode::kSoftmax);
  return mx;
}

void registerSoftmaxKernels(KernelRegistry& registry) {
  registry.add("", "Softmax", 1, softmaxFactory(SoftmaxMode::kSoftmax));
  registry.add("", "LogSoftmax", 1, softmaxFactory(SoftmaxMode::kLogSoftmax));
  registry.add("", "Hardmax", 1, softmaxFactory(SoftmaxMode::kHardmax));
}

}  // namespace whittle::runtime::cpu
