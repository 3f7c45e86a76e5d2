// The signal-processing ops: DFT (opset 17, axis an attribute; opset 20, axis an input), STFT,
// the three window generators (HannWindow, HammingWindow, BlackmanWindow) and MelWeightMatrix.
// Plain reference code in double, stored in the requested dtype: a direct DFT over a twiddle
// table indexed by (k·t) mod n, so every length is exact to double rounding, O(n²) per line;
// a real float32 STFT takes one GEMM against a cached windowed basis instead (StftBasis).
// Semantics follow the ONNX reference (onnx/reference/ops/op_dft.py, op_stft.py, ...), which
// ONNX Runtime 1.32 agrees with: an inverse one-sided DFT is numpy's irfft (real output).
#include <algorithm>
#include <cmath>
#include <complex>
#include <memory>
#include <numbers>

#include <dnnl.h>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/value_io.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;
using Complex = std::complex<double>;

/// exp(-2πi j / n) for j in [0, n).
std::vector<Complex> twiddles(int64_t n) {
  std::vector<Complex> w(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double angle = -2.0 * std::numbers::pi * static_cast<double>(j) / static_cast<double>(n);
    w[static_cast<size_t>(j)] = {std::cos(angle), std::sin(angle)};
  }
  return w;
}

/// out[k] = Σ_t in[t] · w[(k·t) mod n]^(inverse ? -1 : 1) for k in [0, out.size()); `in` holds at
/// most n points (the rest are zero).
void directDft(const std::vector<Complex>& in, const std::vector<Complex>& w, bool inverse, std::vector<Complex>& out) {
  auto n = static_cast<int64_t>(w.size());
  for (size_t k = 0; k < out.size(); ++k) {
    Complex sum = 0;
    for (size_t t = 0; t < in.size(); ++t) {
      Complex tw = w[static_cast<size_t>((static_cast<int64_t>(k) * static_cast<int64_t>(t)) % n)];
      sum += in[t] * (inverse ? std::conj(tw) : tw);
    }
    out[k] = sum;
  }
}

Status checkFloatType(const KernelContext& ctx, ir::DataType t, const std::string& what) {
  if (t != ir::DataType::kFloat && t != ir::DataType::kDouble) {
    return ctx.unsupported(what + " has dtype " + std::string(ir::dataTypeName(t)) +
                           "; float32 and float64 are supported");
  }
  return Status::ok();
}

Expected<int64_t> scalarInt(const KernelContext& ctx, size_t i, const std::string& what) {
  const ir::Tensor& t = ctx.input(i);
  if (t.numel() != 1 || (t.dtype() != ir::DataType::kInt32 && t.dtype() != ir::DataType::kInt64)) {
    return ctx.error(what + " must be one int32 or int64 value, got " + std::to_string(t.numel()) + " values of " +
                     std::string(ir::dataTypeName(t.dtype())));
  }
  return static_cast<int64_t>(t.valueAsDouble(0));
}

// ---- DFT ----

struct DftAttrs {
  bool inverse = false;
  bool onesided = false;
  bool axisFromInput = false;
  int64_t axisAttr = 1;
};

Status runDft(KernelContext& ctx, const DftAttrs& attrs) {
  const ir::Tensor& x = ctx.input(0);
  WH_RETURN_IF_ERROR(checkFloatType(ctx, x.dtype(), "input"));
  int64_t rank = x.rank();
  if (rank < 2) return ctx.error("input must have rank >= 2 ([batch, ..., 1 or 2]), got " + shapeToString(x.dims()));
  int64_t last = x.dims().back();
  if (last != 1 && last != 2) {
    return ctx.error("the last dim of the input must be 1 (real) or 2 (complex), got " + std::to_string(last));
  }
  int64_t axis = attrs.axisFromInput ? -2 : attrs.axisAttr;
  if (attrs.axisFromInput && ctx.hasInput(2)) {
    WH_ASSIGN_OR_RETURN(axis, scalarInt(ctx, 2, "axis"));
  }
  auto normalized = normalizeAxis(axis, rank);
  if (!normalized || *normalized == rank - 1) {
    return ctx.error("axis " + std::to_string(axis) + " is out of range for an input of rank " + std::to_string(rank) +
                     " (the last dim holds the real and imaginary parts)");
  }
  auto a = static_cast<size_t>(*normalized);
  int64_t dim = x.dims()[a];
  bool irfft = attrs.inverse && attrs.onesided;
  int64_t n = irfft ? 2 * (dim - 1) : dim;
  if (ctx.hasInput(1)) {
    WH_ASSIGN_OR_RETURN(n, scalarInt(ctx, 1, "dft_length"));
  }
  if (n < 1) return ctx.error("dft_length must be positive, got " + std::to_string(n));
  std::vector<int64_t> outDims = x.dims();
  int64_t outLen = irfft ? n : (attrs.onesided ? n / 2 + 1 : n);
  outDims[a] = outLen;
  outDims.back() = irfft ? 1 : 2;
  ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
  if (y.numel() == 0) return Status::ok();
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < a; ++d) outer *= x.dims()[d];
  for (size_t d = a + 1; d + 1 < x.dims().size(); ++d) inner *= x.dims()[d];
  // irfft reads the n/2 + 1 non-negative frequencies; a full transform reads n points.
  int64_t used = std::min(dim, irfft ? n / 2 + 1 : n);
  std::vector<Complex> w = twiddles(n);
  std::vector<Complex> in(static_cast<size_t>(irfft ? n : used)), out(static_cast<size_t>(outLen));
  double scale = attrs.inverse ? 1.0 / static_cast<double>(n) : 1.0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t t) { return ((o * dim + t) * inner + i) * last; };
      std::fill(in.begin(), in.end(), Complex(0));
      for (int64_t t = 0; t < used; ++t) {
        in[static_cast<size_t>(t)] = {x.valueAsDouble(at(t)), last == 2 ? x.valueAsDouble(at(t) + 1) : 0.0};
      }
      if (irfft) {
        // Hermitian completion: X[n-k] = conj(X[k]); the imaginary parts of X[0] and, for even
        // n, X[n/2] do not contribute (numpy.fft.irfft).
        in[0] = in[0].real();
        if (n % 2 == 0 && n / 2 < used) in[static_cast<size_t>(n / 2)] = in[static_cast<size_t>(n / 2)].real();
        for (int64_t k = 1; k < (n + 1) / 2; ++k)
          in[static_cast<size_t>(n - k)] = std::conj(in[static_cast<size_t>(k)]);
      }
      directDft(in, w, attrs.inverse, out);
      for (int64_t k = 0; k < outLen; ++k) {
        int64_t dst = ((o * outLen + k) * inner + i) * (irfft ? 1 : 2);
        storeDouble(y, dst, out[static_cast<size_t>(k)].real() * scale);
        if (!irfft) storeDouble(y, dst + 1, out[static_cast<size_t>(k)].imag() * scale);
      }
    }
  }
  return Status::ok();
}

KernelPtr makeDft(const KernelCreateInfo& info) {
  DftAttrs attrs;
  attrs.inverse = info.node.attrInt("inverse", 0) != 0;
  attrs.onesided = info.node.attrInt("onesided", 0) != 0;
  attrs.axisFromInput = info.opset >= 20;
  attrs.axisAttr = info.node.attrInt("axis", 1);
  return makeFunctionKernel([attrs](KernelContext& ctx) { return runDft(ctx, attrs); });
}

// ---- STFT ----

/// The fast path of a real float32 STFT: every frame times one windowed DFT basis, one GEMM.
/// basis[t][2k] = w[t] cos(2πkt/n), basis[t][2k+1] = -w[t] sin(2πkt/n) (angles from the exact
/// (k·t) mod n index, in double, stored as float), so Y[f] = frame_f · basis is the spectrum
/// in [bins, 2] layout. O(frames · n · bins) multiply-adds at GEMM speed: log-mel front ends
/// (Whisper's 400-point frames, NeMo's 512) run in milliseconds where the direct double
/// DFT took hundreds. The basis is kept while the window and the lengths stay the same.
class StftBasis {
 public:
  const float* get(int64_t n, int64_t bins, const ir::Tensor* window) {
    std::vector<double> w(static_cast<size_t>(n), 1.0);
    if (window != nullptr) {
      for (int64_t t = 0; t < n; ++t) w[static_cast<size_t>(t)] = window->valueAsDouble(t);
    }
    if (n != n_ || bins != bins_ || w != window_) {
      n_ = n;
      bins_ = bins;
      window_ = std::move(w);
      basis_.assign(static_cast<size_t>(n * bins * 2), 0.0f);
      std::vector<Complex> tw = twiddles(n);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t k = 0; k < bins; ++k) {
          Complex c = tw[static_cast<size_t>((k * t) % n)] * window_[static_cast<size_t>(t)];
          basis_[static_cast<size_t>((t * bins + k) * 2)] = static_cast<float>(c.real());
          basis_[static_cast<size_t>((t * bins + k) * 2 + 1)] = static_cast<float>(c.imag());
        }
      }
    }
    return basis_.data();
  }

 private:
  int64_t n_ = -1, bins_ = -1;
  std::vector<double> window_;
  std::vector<float> basis_;
};

KernelPtr makeStft(const KernelCreateInfo& info) {
  bool onesided = info.node.attrInt("onesided", 1) != 0;
  auto basis = std::make_shared<StftBasis>();
  return makeFunctionKernel([onesided, basis](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkFloatType(ctx, x.dtype(), "signal"));
    // [batch, length] is a real signal too: the spec asks for [batch, length, 1], but ONNX
    // Runtime takes both and exporters rely on it (onnx-asr's log-mel preprocessors).
    if ((x.rank() != 3 && x.rank() != 2) || (x.rank() == 3 && x.dims()[2] != 1 && x.dims()[2] != 2)) {
      return ctx.error("signal must be [batch, length, 1 or 2] or [batch, length], got " + shapeToString(x.dims()));
    }
    WH_ASSIGN_OR_RETURN(int64_t step, scalarInt(ctx, 1, "frame_step"));
    if (step < 1) return ctx.error("frame_step must be positive, got " + std::to_string(step));
    const ir::Tensor* window = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    if (window != nullptr && window->rank() != 1) {
      return ctx.error("window must be 1-D, got " + shapeToString(window->dims()));
    }
    int64_t length = x.dims()[1], last = x.rank() == 3 ? x.dims()[2] : 1;
    int64_t frameLength = window != nullptr ? window->dims()[0] : length;
    if (ctx.hasInput(3)) {
      WH_ASSIGN_OR_RETURN(frameLength, scalarInt(ctx, 3, "frame_length"));
      if (window != nullptr && window->dims()[0] != frameLength) {
        return ctx.error("frame_length " + std::to_string(frameLength) + " differs from the window's length " +
                         std::to_string(window->dims()[0]));
      }
    }
    if (frameLength < 1 || frameLength > length) {
      return ctx.error("frame_length " + std::to_string(frameLength) + " is out of range for a signal of length " +
                       std::to_string(length));
    }
    int64_t frames = 1 + (length - frameLength) / step;
    int64_t bins = onesided ? frameLength / 2 + 1 : frameLength;
    int64_t batch = x.dims()[0];
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), {batch, frames, bins, 2});
    if (x.dtype() == ir::DataType::kFloat && last == 1 && frames > 0) {
      const float* b = basis->get(frameLength, bins, window);
      std::vector<float> framed(static_cast<size_t>(frames * frameLength));
      for (int64_t bi = 0; bi < batch; ++bi) {
        const float* src = x.data<float>() + bi * length;
        for (int64_t f = 0; f < frames; ++f) {
          std::copy_n(src + f * step, frameLength, framed.data() + f * frameLength);
        }
        float* dst = y.mutableData<float>() + bi * frames * bins * 2;
        dnnl_status_t st = dnnl_sgemm('N', 'N', frames, bins * 2, frameLength, 1.0f, framed.data(), frameLength, b,
                                      bins * 2, 0.0f, dst, bins * 2);
        if (st != dnnl_success) return ctx.error("dnnl_sgemm failed with status " + std::to_string(st));
      }
      return Status::ok();
    }
    std::vector<Complex> w = twiddles(frameLength);
    std::vector<Complex> in(static_cast<size_t>(frameLength)), out(static_cast<size_t>(bins));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t f = 0; f < frames; ++f) {
        for (int64_t t = 0; t < frameLength; ++t) {
          int64_t at = (b * length + f * step + t) * last;
          double weight = window != nullptr ? window->valueAsDouble(t) : 1.0;
          in[static_cast<size_t>(t)] = Complex(x.valueAsDouble(at), last == 2 ? x.valueAsDouble(at + 1) : 0.0) * weight;
        }
        directDft(in, w, /*inverse=*/false, out);
        for (int64_t k = 0; k < bins; ++k) {
          int64_t dst = ((b * frames + f) * bins + k) * 2;
          storeDouble(y, dst, out[static_cast<size_t>(k)].real());
          storeDouble(y, dst + 1, out[static_cast<size_t>(k)].imag());
        }
      }
    }
    return Status::ok();
  });
}

// ---- windows ----

enum class WindowKind { kHann, kHamming, kBlackman };

KernelPtr makeWindow(const KernelCreateInfo& info, WindowKind kind) {
  bool periodic = info.node.attrInt("periodic", 1) != 0;
  auto dtype = static_cast<ir::DataType>(info.node.attrInt("output_datatype", 1));
  if (!ir::isKnownDataType(static_cast<int32_t>(dtype)) || !isDoubleStorable(dtype)) {
    return info.error("output_datatype " + std::to_string(static_cast<int>(dtype)) + " is not a numeric dtype");
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    WH_ASSIGN_OR_RETURN(int64_t size, scalarInt(ctx, 0, "size"));
    if (size < 0) return ctx.error("size must not be negative, got " + std::to_string(size));
    ir::Tensor& y = ctx.allocateOutput(0, dtype, {size});
    double denominator = static_cast<double>(periodic ? size : size - 1);
    for (int64_t i = 0; i < size; ++i) {
      double phase = 2.0 * std::numbers::pi * static_cast<double>(i) / denominator;
      double v = 0;
      switch (kind) {
        case WindowKind::kHann:
          v = 0.5 - 0.5 * std::cos(phase);
          break;
        case WindowKind::kHamming:
          v = 25.0 / 46.0 - (21.0 / 46.0) * std::cos(phase);
          break;
        case WindowKind::kBlackman:
          v = 0.42 - 0.5 * std::cos(phase) + 0.08 * std::cos(2.0 * phase);
          break;
      }
      // A one-point symmetric window divides 0 by 0: NaN, as in ONNX Runtime and the reference.
      storeDouble(y, i, v);
    }
    return Status::ok();
  });
}

// ---- MelWeightMatrix ----

KernelPtr makeMelWeightMatrix(const KernelCreateInfo& info) {
  auto dtype = static_cast<ir::DataType>(info.node.attrInt("output_datatype", 1));
  if (!ir::isKnownDataType(static_cast<int32_t>(dtype)) || !isDoubleStorable(dtype)) {
    return info.error("output_datatype " + std::to_string(static_cast<int>(dtype)) + " is not a numeric dtype");
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    WH_ASSIGN_OR_RETURN(int64_t melBins, scalarInt(ctx, 0, "num_mel_bins"));
    WH_ASSIGN_OR_RETURN(int64_t dftLength, scalarInt(ctx, 1, "dft_length"));
    WH_ASSIGN_OR_RETURN(int64_t sampleRate, scalarInt(ctx, 2, "sample_rate"));
    auto lower = scalarAsDouble(ctx.input(3));
    auto upper = scalarAsDouble(ctx.input(4));
    if (!lower || !upper) return ctx.error("lower_edge_hertz and upper_edge_hertz must be one value each");
    if (melBins < 1 || dftLength < 1 || sampleRate < 1) {
      return ctx.error("num_mel_bins, dft_length and sample_rate must be positive");
    }
    if (*lower < 0 || *upper < *lower || *upper > static_cast<double>(sampleRate) / 2.0) {
      return ctx.error("the edges must satisfy 0 <= lower_edge_hertz <= upper_edge_hertz <= sample_rate / 2");
    }
    int64_t spectrumBins = dftLength / 2 + 1;
    ir::Tensor& y = ctx.allocateOutput(0, dtype, {spectrumBins, melBins});
    for (int64_t i = 0; i < y.numel(); ++i) storeDouble(y, i, 0.0);
    // num_mel_bins + 2 points evenly spaced in mel between the edges, mapped to DFT bins.
    auto toMel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
    double lowMel = toMel(*lower), highMel = toMel(*upper);
    double step = (highMel - lowMel) / static_cast<double>(melBins + 2);
    std::vector<int64_t> bin(static_cast<size_t>(melBins + 2));
    for (int64_t i = 0; i < melBins + 2; ++i) {
      double hz = 700.0 * (std::pow(10.0, (static_cast<double>(i) * step + lowMel) / 2595.0) - 1.0);
      bin[static_cast<size_t>(i)] =
          static_cast<int64_t>(std::floor(static_cast<double>(dftLength + 1) * hz / static_cast<double>(sampleRate)));
    }
    auto set = [&](int64_t row, int64_t col, double v) {
      if (row >= 0 && row < spectrumBins) storeDouble(y, row * melBins + col, v);
    };
    for (int64_t i = 0; i < melBins; ++i) {
      int64_t left = bin[static_cast<size_t>(i)], center = bin[static_cast<size_t>(i + 1)],
              right = bin[static_cast<size_t>(i + 2)];
      if (center == left) {
        set(center, i, 1.0);
      } else {
        for (int64_t j = left; j <= center; ++j) {
          set(j, i, static_cast<double>(j - left) / static_cast<double>(center - left));
        }
      }
      for (int64_t j = center; j < right; ++j) {
        set(j, i, static_cast<double>(right - j) / static_cast<double>(right - center));
      }
    }
    return Status::ok();
  });
}

}  // namespace

void registerSignalKernels(KernelRegistry& r) {
  r.add("", "DFT", 17, makeDft);
  r.add("", "STFT", 17, makeStft);
  r.add("", "HannWindow", 17, [](const KernelCreateInfo& i) { return makeWindow(i, WindowKind::kHann); });
  r.add("", "HammingWindow", 17, [](const KernelCreateInfo& i) { return makeWindow(i, WindowKind::kHamming); });
  r.add("", "BlackmanWindow", 17, [](const KernelCreateInfo& i) { return makeWindow(i, WindowKind::kBlackman); });
  r.add("", "MelWeightMatrix", 17, makeMelWeightMatrix);
}

}  // namespace whittle::runtime::cpu
