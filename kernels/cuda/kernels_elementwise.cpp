// Entry points of the elementwise kernels (elementwise.cu): unary math and activations,
// binary arithmetic and comparisons with broadcasting, Where, Cast, Identity.
#include <cmath>
#include <limits>
#include <map>

#include "cuda/cuda_common.h"

namespace whittle::runtime::cuda {
namespace {

using ir::DataType;

struct UnarySpec {
  UnaryOp op;
  bool boolOnly = false;
};

const std::map<std::string, UnaryOp>& unaryOps() {
  static const std::map<std::string, UnaryOp> ops = {
      {"Relu", UnaryOp::kRelu},       {"Sigmoid", UnaryOp::kSigmoid},   {"Tanh", UnaryOp::kTanh},
      {"Exp", UnaryOp::kExp},         {"Log", UnaryOp::kLog},           {"Sqrt", UnaryOp::kSqrt},
      {"Neg", UnaryOp::kNeg},         {"Abs", UnaryOp::kAbs},           {"Erf", UnaryOp::kErf},
      {"Reciprocal", UnaryOp::kReciprocal}, {"Floor", UnaryOp::kFloor}, {"Ceil", UnaryOp::kCeil},
      {"Round", UnaryOp::kRound},     {"Softplus", UnaryOp::kSoftplus}, {"Gelu", UnaryOp::kGelu},
      {"LeakyRelu", UnaryOp::kLeakyRelu}, {"Elu", UnaryOp::kElu},       {"HardSigmoid", UnaryOp::kHardSigmoid},
      {"HardSwish", UnaryOp::kHardSwish}, {"Clip", UnaryOp::kClip},     {"Sin", UnaryOp::kSin},
      {"Cos", UnaryOp::kCos},         {"Not", UnaryOp::kNot}};
  return ops;
}

Expected<std::unique_ptr<Kernel>> makeUnary(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  UnaryOp op = unaryOps().at(node.opType());
  UnaryParams params;
  if (op == UnaryOp::kLeakyRelu) params.alpha = node.attrFloat("alpha", 0.01f);
  if (op == UnaryOp::kElu) params.alpha = node.attrFloat("alpha", 1.0f);
  if (op == UnaryOp::kHardSigmoid) {
    params.alpha = node.attrFloat("alpha", 0.2f);
    params.beta = node.attrFloat("beta", 0.5f);
  }
  if (op == UnaryOp::kGelu && node.attrString("approximate", "none") == "tanh") op = UnaryOp::kGeluTanh;
  if (op == UnaryOp::kClip) {
    params.alpha = -std::numeric_limits<float>::infinity();
    params.beta = std::numeric_limits<float>::infinity();
    if (info.opset < 11) {
      params.alpha = node.attrFloat("min", params.alpha);
      params.beta = node.attrFloat("max", params.beta);
    } else {
      // The bounds are read when the kernel is made: constant inputs only.
      for (size_t i = 1; i < 3 && i < node.numInputs(); ++i) {
        if (node.input(i) == nullptr) continue;
        const ir::Tensor* c = info.constantInput(i);
        if (c == nullptr || c->numel() != 1 || (c->dtype() != DataType::kFloat && c->dtype() != DataType::kFloat16)) {
          return info.unsupported("Clip bounds must be float32 or float16 constants on the cuda runtime");
        }
        (i == 1 ? params.alpha : params.beta) =
            c->dtype() == DataType::kFloat ? c->data<float>()[0] : ir::halfToFloat(c->data<uint16_t>()[0]);
      }
    }
  }
  return makeFunctionKernel([op, params](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (op == UnaryOp::kNot) {
      WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", x.dtype(), {DataType::kBool}));
    } else {
      WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", x.dtype(), {DataType::kFloat, DataType::kFloat16}));
    }
    ElemType type{};
    elemType(x.dtype(), type);
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), x.dims()));
    WH_CUDA(ctx.describe(), launchUnary(op, type, dptr(x), dptr(*y), x.numel(), params, cudaContext(ctx).stream()));
    return Status::ok();
  });
}

const std::map<std::string, BinaryOp>& binaryOps() {
  static const std::map<std::string, BinaryOp> ops = {
      {"Add", BinaryOp::kAdd},     {"Sub", BinaryOp::kSub},   {"Mul", BinaryOp::kMul},         {"Div", BinaryOp::kDiv},
      {"Pow", BinaryOp::kPow},     {"Max", BinaryOp::kMax},   {"Min", BinaryOp::kMin},         {"PRelu", BinaryOp::kPRelu},
      {"Equal", BinaryOp::kEqual}, {"Less", BinaryOp::kLess}, {"Greater", BinaryOp::kGreater}, {"And", BinaryOp::kAnd},
      {"Or", BinaryOp::kOr}};
  return ops;
}

Expected<std::unique_ptr<Kernel>> makeBinary(const KernelCreateInfo& info) {
  const BinaryOp op = binaryOps().at(info.node.opType());
  if ((op == BinaryOp::kMax || op == BinaryOp::kMin) && info.node.numInputs() != 2) {
    return info.unsupported(info.node.opType() + " with " + std::to_string(info.node.numInputs()) +
                            " inputs is not supported by the cuda runtime (two only)");
  }
  const bool logical = op == BinaryOp::kAnd || op == BinaryOp::kOr;
  const bool compare = logical || op == BinaryOp::kEqual || op == BinaryOp::kLess || op == BinaryOp::kGreater;
  return makeFunctionKernel([op, logical, compare](KernelContext& ctx) -> Status {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor& b = ctx.input(1);
    if (logical) {
      WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", a.dtype(), {DataType::kBool}));
    } else {
      WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", a.dtype(),
                                    {DataType::kFloat, DataType::kFloat16, DataType::kInt32, DataType::kInt64}));
    }
    if (b.dtype() != a.dtype()) return ctx.error("inputs have different types");
    std::vector<int64_t> outDims;
    auto walk = planBinary(a.dims(), b.dims(), outDims);
    if (!walk) return ctx.error("input shapes do not broadcast");
    ElemType type{};
    elemType(a.dtype(), type);
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, compare ? DataType::kBool : a.dtype(), outDims));
    WH_CUDA(ctx.describe(), launchBinary(op, type, dptr(a), dptr(b), dptr(*y), *walk, cudaContext(ctx).stream()));
    return Status::ok();
  });
}

Status runWhere(KernelContext& ctx) {
  const ir::Tensor& cond = ctx.input(0);
  const ir::Tensor& x = ctx.input(1);
  const ir::Tensor& y = ctx.input(2);
  WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "condition", cond.dtype(), {DataType::kBool}));
  if (x.dtype() != y.dtype()) return ctx.error("X and Y have different types");
  const size_t bytes = ir::elementSize(x.dtype());
  if (bytes != 1 && bytes != 2 && bytes != 4 && bytes != 8) return ctx.unsupported("element type not supported by the cuda runtime");
  auto dims = broadcastDims({cond.dims(), x.dims(), y.dims()});
  if (!dims) return ctx.error("input shapes do not broadcast");
  // Two walks over the same output dims: (out, cond, x) and y's strides, without collapsing
  // (the walks must keep the same dims).
  auto stridesFor = [&](const std::vector<int64_t>& d) {
    std::vector<int64_t> own = contiguousStrides(d);
    std::vector<int64_t> s(dims->size(), 0);
    const size_t lead = dims->size() - d.size();
    for (size_t i = 0; i < d.size(); ++i) s[lead + i] = d[i] == 1 ? 0 : own[i];
    return s;
  };
  if (dims->size() > static_cast<size_t>(kMaxRank)) return ctx.unsupported("rank above 8");
  StridedWalk walk;
  walk.rank = static_cast<int>(std::max<size_t>(dims->size(), 1));
  walk.numel = 1;
  for (int64_t d : *dims) walk.numel *= d;
  std::vector<int64_t> out = contiguousStrides(*dims), sc = stridesFor(cond.dims()), sx = stridesFor(x.dims()),
                       sy = stridesFor(y.dims());
  int64_t yStrides[kMaxRank] = {};
  if (dims->empty()) {
    walk.dims[0] = 1;
  }
  for (size_t i = 0; i < dims->size(); ++i) {
    walk.dims[i] = (*dims)[i];
    walk.strides[0][i] = out[i];
    walk.strides[1][i] = sc[i];
    walk.strides[2][i] = sx[i];
    yStrides[i] = sy[i];
  }
  WH_ASSIGN_OR_RETURN(ir::Tensor * o, newOutput(ctx, 0, x.dtype(), *dims));
  WH_CUDA(ctx.describe(), launchWhere(bytes, static_cast<const bool*>(dptr(cond)), dptr(x), dptr(y), dptr(*o), walk, yStrides,
                                      cudaContext(ctx).stream()));
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> makeCast(const KernelCreateInfo& info) {
  const auto to = static_cast<DataType>(info.node.attrInt("to", 0));
  ElemType toType{};
  if (!elemType(to, toType)) {
    return info.unsupported("Cast to " + std::string(ir::dataTypeName(to)) + " is not supported by the cuda runtime");
  }
  return makeFunctionKernel([to, toType](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ElemType from{};
    if (!elemType(x.dtype(), from)) {
      return ctx.unsupported("Cast from " + std::string(ir::dataTypeName(x.dtype())) + " is not supported by the cuda runtime");
    }
    if (x.dtype() == to) {
      ctx.setOutput(0, x);
      return Status::ok();
    }
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, to, x.dims()));
    WH_CUDA(ctx.describe(), launchCast(from, toType, dptr(x), dptr(*y), x.numel(), cudaContext(ctx).stream()));
    return Status::ok();
  });
}

Status runIdentity(KernelContext& ctx) {
  ctx.setOutput(0, ctx.input(0));
  return Status::ok();
}

}  // namespace

void registerElementwiseKernels(KernelRegistry& r) {
  for (const auto& [name, op] : unaryOps()) r.add("", name, 1, makeUnary);
  for (const auto& [name, op] : binaryOps()) r.add("", name, 1, makeBinary);
  r.add("", "Where", 9, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> { return makeFunctionKernel(runWhere); });
  r.add("", "Cast", 1, makeCast);
  auto identity = [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.opType() == "Dropout" && info.node.numOutputs() > 1 && info.node.output(1) != nullptr) {
      return info.unsupported("Dropout's mask output is not supported by the cuda runtime");
    }
    return makeFunctionKernel(runIdentity);
  };
  r.add("", "Identity", 1, identity);
  r.add("", "Dropout", 1, identity);
}

}  // namespace whittle::runtime::cuda
