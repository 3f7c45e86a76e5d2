// BitwiseAnd, BitwiseOr, BitwiseXor (numpy broadcasting) and BitwiseNot, opset 18: on the
// eight integer dtypes, bit for bit.
#include <functional>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

bool isBitwiseType(ir::DataType t) {
  using ir::DataType;
  switch (t) {
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
    case DataType::kUint64:
      return true;
    default:
      return false;
  }
}

/// Calls fn(T{}) with the unsigned type of `t`'s width (the bits are all that matter).
template <typename F>
void dispatchBits(ir::DataType t, F&& fn) {
  switch (ir::elementSize(t)) {
    case 1:
      fn(uint8_t{});
      break;
    case 2:
      fn(uint16_t{});
      break;
    case 4:
      fn(uint32_t{});
      break;
    default:
      fn(uint64_t{});
      break;
  }
}

enum class BitOp { kAnd, kOr, kXor };

template <typename T>
T apply(BitOp op, T a, T b) {
  switch (op) {
    case BitOp::kAnd:
      return static_cast<T>(a & b);
    case BitOp::kOr:
      return static_cast<T>(a | b);
    default:
      return static_cast<T>(a ^ b);
  }
}

Status runBinary(KernelContext& ctx, BitOp op) {
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) {
    return ctx.error("inputs have different dtypes (" + std::string(ir::dataTypeName(a.dtype())) + " and " +
                     std::string(ir::dataTypeName(b.dtype())) + ")");
  }
  if (!isBitwiseType(a.dtype())) {
    return ctx.unsupported("dtype " + std::string(ir::dataTypeName(a.dtype())) + " is not supported (integers only)");
  }
  auto outDims = broadcastShapes(a.dims(), b.dims());
  if (!outDims) {
    return ctx.error("shapes " + shapeToString(a.dims()) + " and " + shapeToString(b.dims()) + " do not broadcast");
  }
  ir::Tensor& y = ctx.allocateOutput(0, a.dtype(), *outDims);
  int64_t n = y.numel();
  if (n == 0) return Status::ok();
  std::vector<int64_t> sa = broadcastStrides(a.dims(), *outDims), sb = broadcastStrides(b.dims(), *outDims);
  const std::vector<int64_t>& dims = *outDims;
  size_t rank = dims.size();
  dispatchBits(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.mutableData<T>();
    if (a.dims() == b.dims()) {
      for (int64_t i = 0; i < n; ++i) py[i] = apply(op, pa[i], pb[i]);
      return;
    }
    // Walk the output in row-major order, carrying each input's offset.
    std::vector<int64_t> index(rank, 0);
    int64_t oa = 0, ob = 0;
    for (int64_t i = 0; i < n; ++i) {
      py[i] = apply(op, pa[oa], pb[ob]);
      for (size_t d = rank; d-- > 0;) {
        if (++index[d] < dims[d]) {
          oa += sa[d];
          ob += sb[d];
          break;
        }
        oa -= sa[d] * (dims[d] - 1);
        ob -= sb[d] * (dims[d] - 1);
        index[d] = 0;
      }
    }
  });
  return Status::ok();
}

KernelPtr makeBinary(BitOp op) {
  return makeFunctionKernel([op](KernelContext& ctx) { return runBinary(ctx, op); });
}

KernelPtr makeNot(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (!isBitwiseType(x.dtype())) {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported (integers only)");
    }
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
    dispatchBits(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = y.mutableData<T>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(~px[i]);
    });
    return Status::ok();
  });
}

}  // namespace

void registerBitwiseKernels(KernelRegistry& r) {
  r.add("", "BitwiseAnd", 18, [](const KernelCreateInfo&) { return makeBinary(BitOp::kAnd); });
  r.add("", "BitwiseOr", 18, [](const KernelCreateInfo&) { return makeBinary(BitOp::kOr); });
  r.add("", "BitwiseXor", 18, [](const KernelCreateInfo&) { return makeBinary(BitOp::kXor); });
  r.add("", "BitwiseNot", 18, makeNot);
}

}  // namespace whittle::runtime::cpu
