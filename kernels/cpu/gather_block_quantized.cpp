// com.microsoft GatherBlockQuantized: a Gather from a block-wise quantized table (embeddings).
//
//   y[o, i..., r..., j] = (q[o, idx[i...], r..., j] - z[..., j / block]) * s[..., j / block]
//
// data is int4, uint4 or uint8; uint8 follows MatMulNBits' conventions: `bits` (4 or 8) per
// value, 4-bit values packed two a byte along the last axis (low nibble first) with zero points
// packed the same way, and a default zero point of 2^(bits-1); int4/uint4 default to 0. Scales
// (float32) have data's shape with the last axis cut into blocks of `block_size`. Supported:
// quantize_axis = the last axis (the only one ONNX Runtime's exporters write), gather_axis any
// other axis; negative indices count from the end.
#include <algorithm>
#include <cstring>

#include "cpu/kernel_util.h"
#include "cpu/matmul_nbits.h"

namespace whittle::runtime::cpu {
namespace {

using ir::DataType;

struct Table {
  const uint8_t* bytes = nullptr;
  int bits = 4;
  bool isSigned = false;
  int64_t rowValues = 0;  // values per row (the unpacked last dim)
  int64_t rowBytes = 0;

  int32_t at(int64_t row, int64_t j) const {
    const uint8_t* r = bytes + row * rowBytes;
    if (bits == 8) return isSigned ? static_cast<int8_t>(r[j]) : r[j];
    const int32_t v = (r[j >> 1] >> ((j & 1) * 4)) & 15;
    return isSigned && v >= 8 ? v - 16 : v;
  }
};

Status gatherBlockQuantized(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const ir::Tensor& data = ctx.input(0);
  const ir::Tensor& indices = ctx.input(1);
  const ir::Tensor& scales = ctx.input(2);
  const ir::Tensor* zp = ctx.hasInput(3) ? &ctx.input(3) : nullptr;
  const int64_t blockSize = node.attrInt("block_size", 128);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0) {
    return ctx.error("block_size must be a power of two of at least 16, got " + std::to_string(blockSize));
  }
  if (scales.dtype() != DataType::kFloat) {
    return ctx.unsupported("scales of dtype " + std::string(ir::dataTypeName(scales.dtype())) + " are not supported (float32 is)");
  }
  Table t;
  t.bytes = reinterpret_cast<const uint8_t*>(data.rawData());
  int32_t defaultZp = 0;
  std::vector<int64_t> dims = data.dims();
  if (dims.empty()) return ctx.error("data must have at least one dimension");
  switch (data.dtype()) {
    case DataType::kInt4: t.isSigned = true; break;
    case DataType::kUint4: break;
    case DataType::kUint8:
      t.bits = static_cast<int>(node.attrInt("bits", 4));
      if (t.bits != 4 && t.bits != 8) return ctx.unsupported("bits=" + std::to_string(t.bits) + " is not supported (4 and 8 are)");
      defaultZp = 1 << (t.bits - 1);
      if (t.bits == 4) dims.back() *= 2;
      break;
    default:
      return ctx.unsupported("data of dtype " + std::string(ir::dataTypeName(data.dtype())) + " is not supported (int4, uint4, uint8)");
  }
  const auto rank = static_cast<int64_t>(dims.size());
  auto qAxis = normalizeAxis(node.attrInt("quantize_axis", 1), rank);
  auto gAxis = normalizeAxis(node.attrInt("gather_axis", 0), rank);
  if (!qAxis || !gAxis) return ctx.error("gather_axis or quantize_axis is out of range for rank " + std::to_string(rank));
  if (*qAxis != rank - 1) return ctx.unsupported("quantize_axis must be the last axis (" + std::to_string(rank - 1) + ")");
  if (*gAxis == *qAxis) return ctx.unsupported("gathering along the quantized axis is not supported");
  t.rowValues = dims.back();
  t.rowBytes = t.bits == 4 && data.dtype() == DataType::kUint8 ? t.rowValues / 2 : t.rowValues * t.bits / 8;
  if (data.dtype() != DataType::kUint8 && t.bits == 4) {
    // int4/uint4 tensors pack the whole tensor, so rows start on a byte only when the row is even.
    if (t.rowValues % 2 != 0) return ctx.unsupported("an odd last dimension of int4/uint4 data is not supported");
    t.rowBytes = t.rowValues / 2;
  }
  const int64_t blocks = (t.rowValues + blockSize - 1) / blockSize;
  std::vector<int64_t> scaleDims = dims;
  scaleDims.back() = blocks;
  if (scales.dims() != scaleDims) {
    return ctx.error("scales must be " + shapeToString(scaleDims) + " for data " + shapeToString(dims) + " and block_size " +
                     std::to_string(blockSize) + ", got " + shapeToString(scales.dims()));
  }
  Table z;
  if (zp != nullptr) {
    if (zp->dtype() != data.dtype()) return ctx.error("zero_points must have data's dtype");
    z = t;
    z.bytes = reinterpret_cast<const uint8_t*>(zp->rawData());
    z.rowValues = blocks;
    z.rowBytes = t.bits == 4 ? (blocks + 1) / 2 : blocks;
    if (data.dtype() != DataType::kUint8 && t.bits == 4 && blocks % 2 != 0) {
      return ctx.unsupported("int4/uint4 zero points with an odd number of blocks per row are not supported");
    }
    const int64_t rows = scales.numel() / blocks;
    if (zp->numel() * (data.dtype() == DataType::kUint8 && t.bits == 4 ? 2 : 1) < rows * blocks) {
      return ctx.error("zero_points " + shapeToString(zp->dims()) + " are too small for scales " + shapeToString(scales.dims()));
    }
  }
  WH_ASSIGN_OR_RETURN(std::vector<int64_t> idx, readInts(indices, "indices"));
  const int64_t axisDim = dims[static_cast<size_t>(*gAxis)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < *gAxis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (int64_t d = *gAxis + 1; d < rank - 1; ++d) inner *= dims[static_cast<size_t>(d)];
  for (int64_t& i : idx) {
    if (i < -axisDim || i >= axisDim) return ctx.error("index " + std::to_string(i) + " is out of range for dimension " + std::to_string(axisDim));
    if (i < 0) i += axisDim;
  }
  std::vector<int64_t> outDims(dims.begin(), dims.begin() + *gAxis);
  outDims.insert(outDims.end(), indices.dims().begin(), indices.dims().end());
  outDims.insert(outDims.end(), dims.begin() + *gAxis + 1, dims.end());
  ir::Tensor& y = ctx.allocateOutput(0, DataType::kFloat, outDims);
  float* out = y.mutableData<float>();
  const float* s = scales.data<float>();
  const auto count = static_cast<int64_t>(idx.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t n = 0; n < count; ++n) {
      for (int64_t r = 0; r < inner; ++r) {
        const int64_t src = (o * axisDim + idx[static_cast<size_t>(n)]) * inner + r;
        float* dst = out + ((o * count + n) * inner + r) * t.rowValues;
        for (int64_t j = 0; j < t.rowValues; ++j) {
          const int64_t b = j / blockSize;
          const int32_t zv = zp != nullptr ? z.at(src, b) : defaultZp;
          dst[j] = static_cast<float>(t.at(src, j) - zv) * s[src * blocks + b];
        }
      }
    }
  }
  return Status::ok();
}

}  // namespace

void registerGatherBlockQuantizedKernel(KernelRegistry& registry) {
  registry.add("com.microsoft", "GatherBlockQuantized", 1, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return makeFunctionKernel(gatherBlockQuantized);
  });
}

}  // namespace whittle::runtime::cpu
