// The elementwise family: registration, the broadcast planner shared by its files, and the
// identity-like ops (Identity, Dropout at inference), which return their input as a view.
// Binary ops live in elementwise_binary.cpp, unary ops in elementwise_unary.cpp, Cast in
// elementwise_cast.cpp.
#include <optional>
#include <random>

#include "cpu/elementwise_common.h"
#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {

bool makeBroadcastPlan(const std::vector<int64_t>& outDims, std::initializer_list<const std::vector<int64_t>*> inputs,
                       BroadcastPlan& plan) {
  plan = BroadcastPlan{};
  plan.numInputs = static_cast<int>(inputs.size());
  plan.numel = 1;
  for (int64_t d : outDims) plan.numel *= d;
  if (plan.numel == 0) {
    plan.rank = 1;
    plan.dims[0] = 0;
    return true;
  }
  // Walk the output dims from the innermost, giving each input its stride there (0 where it
  // broadcasts), and merge a dim into the one inside it when every input allows.
  std::array<int64_t, 3> running{1, 1, 1};
  std::array<const std::vector<int64_t>*, 3> in{};
  std::copy(inputs.begin(), inputs.end(), in.begin());
  int rank = 0;  // merged dims so far, innermost first
  size_t outRank = outDims.size();
  for (size_t k = 0; k < outRank; ++k) {
    int64_t size = outDims[outRank - 1 - k];
    if (size == 1) continue;
    std::array<int64_t, 3> stride{};
    for (int i = 0; i < plan.numInputs; ++i) {
      const auto& dims = *in[static_cast<size_t>(i)];
      int64_t d = k < dims.size() ? dims[dims.size() - 1 - k] : 1;
      stride[static_cast<size_t>(i)] = d == 1 ? 0 : running[static_cast<size_t>(i)];
      running[static_cast<size_t>(i)] *= d;
    }
    bool merge = rank > 0;
    for (int i = 0; merge && i < plan.numInputs; ++i) {
      auto iu = static_cast<size_t>(i);
      auto ju = static_cast<size_t>(rank - 1);
      merge = stride[iu] == plan.strides[iu][ju] * plan.dims[ju];
    }
    if (merge) {
      plan.dims[static_cast<size_t>(rank - 1)] *= size;
      continue;
    }
    if (rank == BroadcastPlan::kMaxRank) return false;
    plan.dims[static_cast<size_t>(rank)] = size;
    for (int i = 0; i < plan.numInputs; ++i) {
      plan.strides[static_cast<size_t>(i)][static_cast<size_t>(rank)] = stride[static_cast<size_t>(i)];
    }
    ++rank;
  }
  if (rank == 0) {  // a single element
    plan.rank = 1;
    plan.dims[0] = 1;
    return true;
  }
  // Stored innermost first so far: reverse into outermost-first order.
  plan.rank = rank;
  std::reverse(plan.dims.begin(), plan.dims.begin() + rank);
  for (int i = 0; i < plan.numInputs; ++i) {
    auto& s = plan.strides[static_cast<size_t>(i)];
    std::reverse(s.begin(), s.begin() + rank);
  }
  return true;
}

namespace {

/// Dropout at inference: the output is the input; the optional mask is all true.
/// training_mode=true (opset 12+) with a non-zero ratio keeps each element with probability
/// 1 - ratio and scales it by 1 / (1 - ratio). The draws are numpy's legacy generator (MT19937
/// seeded with init_genrand, one double from two 32-bit words), so that with the `seed`
/// attribute the mask is the one the ONNX reference (np.random.seed(seed); uniform >= ratio)
/// makes; without it the seed comes from std::random_device, as the spec leaves it free.
class DropoutKernel final : public Kernel {
 public:
  DropoutKernel(int64_t opset, std::optional<int64_t> seed) : opset_(opset), seed_(seed) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    if (opset_ >= 12 && ctx.hasInput(2) && ctx.input(2).numel() == 1 && ctx.input(2).data<bool>()[0]) {
      double ratio = ctx.hasInput(1) && ctx.input(1).numel() == 1 ? ctx.input(1).valueAsDouble(0) : 0.5;
      if (ratio != 0.0) return training(ctx, x, ratio);
    }
    ctx.setOutput(0, x);
    if (ctx.hasOutput(1)) {
      // Opsets 7-9 typed the mask like the input; since 10 it is bool.
      ir::DataType maskType = opset_ >= 10 ? ir::DataType::kBool : x.dtype();
      ir::Tensor& mask = ctx.allocateOutput(1, maskType, x.dims());
      int64_t n = x.numel();
      bool ok = dispatchTypes<kAllTypes>(maskType, [&](auto tag) {
        using T = decltype(tag);
        T one = Elem<T>::store(ComputeT<T>{1});
        T* m = mask.mutableData<T>();
        for (int64_t i = 0; i < n; ++i) m[i] = one;
      });
      if (!ok) return ctx.unsupported("mask of dtype " + std::string(ir::dataTypeName(maskType)) + " is not supported");
    }
    return Status::ok();
  }

 private:
  Status training(KernelContext& ctx, const ir::Tensor& x, double ratio) const {
    if (!(ratio > 0.0 && ratio < 1.0)) return ctx.error("ratio " + std::to_string(ratio) + " is outside [0, 1)");
    std::mt19937 rng(static_cast<std::mt19937::result_type>(seed_ ? *seed_ : std::random_device{}()));
    auto uniform = [&rng] {
      const uint32_t a = static_cast<uint32_t>(rng()) >> 5, b = static_cast<uint32_t>(rng()) >> 6;
      return (a * 67108864.0 + b) / 9007199254740992.0;
    };
    const int64_t n = x.numel();
    std::vector<uint8_t> keep(static_cast<size_t>(n));
    for (auto& k : keep) k = uniform() >= ratio ? 1 : 0;
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
    bool ok = dispatchTypes<kFloatTypes>(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using C = ComputeT<T>;
      const C scale = static_cast<C>(1.0 / (1.0 - ratio));
      const T* xd = x.data<T>();
      T* yd = y.mutableData<T>();
      for (int64_t i = 0; i < n; ++i) yd[i] = Elem<T>::store(keep[static_cast<size_t>(i)] ? Elem<T>::load(xd[i]) * scale : C{0});
    });
    if (!ok) return ctx.unsupported("training-mode Dropout of dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    if (ctx.hasOutput(1)) {
      ir::Tensor& mask = ctx.allocateOutput(1, ir::DataType::kBool, x.dims());
      std::copy(keep.begin(), keep.end(), reinterpret_cast<uint8_t*>(mask.mutableRawData()));
    }
    return Status::ok();
  }

  int64_t opset_;
  std::optional<int64_t> seed_;
};

}  // namespace

void registerElementwiseKernels(KernelRegistry& registry) {
  registerBinaryKernels(registry);
  registerUnaryKernels(registry);
  registerCastKernels(registry);
  registry.add("", "Identity", 1, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return makeFunctionKernel([](KernelContext& ctx) {
      ctx.setValue(0, ctx.value(0));  // a view: no copy; sequences and optionals too
      return Status::ok();
    });
  });
  registry.add("", "Dropout", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    std::optional<int64_t> seed;
    if (info.node.findAttribute("seed") != nullptr) seed = info.node.attrInt("seed", 0);
    return std::unique_ptr<Kernel>(std::make_unique<DropoutKernel>(info.opset, seed));
  });
}

}  // namespace whittle::runtime::cpu
