// The random generators: RandomUniform, RandomNormal (shape from an attribute),
// RandomUniformLike, RandomNormalLike (shape of the input) and Bernoulli (one draw per input
// probability). Each node owns a std::mt19937 made when the session is created and advanced by
// every run, so a session gives a fresh draw each run and two sessions of the same model give
// the same sequence. The seed is the `seed` attribute (a float, truncated to an integer);
// without one the spec leaves the seed to the runtime, and whittle uses a fixed one
// (kDefaultSeed) so that runs repeat, which comparisons between an original and an optimized
// model need. No draw reproduces another runtime's or numpy's sequence: the ONNX node tests of
// Bernoulli store one draw of numpy's global generator (see node_expected_failures.txt).
#include <cmath>
#include <mutex>
#include <random>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/value_io.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

constexpr uint32_t kDefaultSeed = 5489u;  // std::mt19937's own default

struct Generator {
  std::mutex mutex;
  std::mt19937 engine;
};

std::shared_ptr<Generator> makeGenerator(const ir::Node& node) {
  auto g = std::make_shared<Generator>();
  uint32_t seed = kDefaultSeed;
  if (node.hasAttribute("seed")) seed = static_cast<uint32_t>(static_cast<int64_t>(node.attrFloat("seed", 0.0f)));
  g->engine.seed(seed);
  return g;
}

bool isRandomFloatType(ir::DataType t) {
  return t == ir::DataType::kFloat || t == ir::DataType::kDouble || t == ir::DataType::kFloat16 ||
         t == ir::DataType::kBFloat16;
}

enum class Distribution { kUniform, kNormal };

struct DrawParams {
  Distribution distribution = Distribution::kUniform;
  double a = 0, b = 1;  // uniform: low, high; normal: mean, scale
};

Status fill(ir::Tensor& y, const DrawParams& p, Generator& g) {
  std::lock_guard<std::mutex> lock(g.mutex);
  if (p.distribution == Distribution::kUniform) {
    std::uniform_real_distribution<double> d(p.a, p.b);
    for (int64_t i = 0; i < y.numel(); ++i) storeDouble(y, i, d(g.engine));
  } else {
    std::normal_distribution<double> d(p.a, p.b);
    for (int64_t i = 0; i < y.numel(); ++i) storeDouble(y, i, d(g.engine));
  }
  return Status::ok();
}

Expected<DrawParams> drawParams(const KernelCreateInfo& info, Distribution distribution) {
  DrawParams p;
  p.distribution = distribution;
  if (distribution == Distribution::kUniform) {
    p.a = info.node.attrFloat("low", 0.0f);
    p.b = info.node.attrFloat("high", 1.0f);
    if (!(p.a < p.b)) return info.error("low must be below high");
  } else {
    p.a = info.node.attrFloat("mean", 0.0f);
    p.b = info.node.attrFloat("scale", 1.0f);
    if (!(p.b > 0)) return info.error("scale must be positive");
  }
  return p;
}

/// RandomUniform, RandomNormal: shape and dtype from attributes.
KernelPtr makeRandom(const KernelCreateInfo& info, Distribution distribution) {
  WH_ASSIGN_OR_RETURN(DrawParams p, drawParams(info, distribution));
  if (!info.node.hasAttribute("shape")) return info.error("attribute 'shape' is required");
  std::vector<int64_t> shape = info.node.attrInts("shape");
  for (int64_t d : shape) {
    if (d < 0) return info.error("shape " + shapeToString(shape) + " has a negative dim");
  }
  auto dtype = static_cast<ir::DataType>(info.node.attrInt("dtype", 1));
  if (!isRandomFloatType(dtype)) {
    return info.error("dtype " + std::to_string(static_cast<int>(dtype)) + " is not a floating-point type");
  }
  auto g = makeGenerator(info.node);
  return makeFunctionKernel([=](KernelContext& ctx) { return fill(ctx.allocateOutput(0, dtype, shape), p, *g); });
}

/// RandomUniformLike, RandomNormalLike: the input's shape; dtype from the attribute or the input.
KernelPtr makeRandomLike(const KernelCreateInfo& info, Distribution distribution) {
  WH_ASSIGN_OR_RETURN(DrawParams p, drawParams(info, distribution));
  bool hasDtype = info.node.hasAttribute("dtype");
  auto dtype = static_cast<ir::DataType>(info.node.attrInt("dtype", 1));
  if (hasDtype && !isRandomFloatType(dtype)) {
    return info.error("dtype " + std::to_string(static_cast<int>(dtype)) + " is not a floating-point type");
  }
  auto g = makeGenerator(info.node);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType out = hasDtype ? dtype : x.dtype();
    if (!isRandomFloatType(out)) {
      return ctx.error("input dtype " + std::string(ir::dataTypeName(out)) +
                       " is not floating point; set the dtype attribute");
    }
    return fill(ctx.allocateOutput(0, out, x.dims()), p, *g);
  });
}

KernelPtr makeBernoulli(const KernelCreateInfo& info) {
  bool hasDtype = info.node.hasAttribute("dtype");
  auto dtype = static_cast<ir::DataType>(info.node.attrInt("dtype", 1));
  if (hasDtype && (!ir::isKnownDataType(static_cast<int32_t>(dtype)) || !isDoubleStorable(dtype))) {
    return info.error("dtype " + std::to_string(static_cast<int>(dtype)) + " is not a numeric or bool type");
  }
  auto g = makeGenerator(info.node);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (!isRandomFloatType(x.dtype())) {
      return ctx.error("input must be float16, bfloat16, float32 or float64, got " +
                       std::string(ir::dataTypeName(x.dtype())));
    }
    ir::Tensor& y = ctx.allocateOutput(0, hasDtype ? dtype : x.dtype(), x.dims());
    std::lock_guard<std::mutex> lock(g->mutex);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      double prob = x.valueAsDouble(i);
      if (!(prob >= 0.0 && prob <= 1.0)) {
        return ctx.error("probability " + std::to_string(prob) + " at element " + std::to_string(i) +
                         " is outside [0, 1]");
      }
      storeDouble(y, i, u(g->engine) < prob ? 1.0 : 0.0);
    }
    return Status::ok();
  });
}

}  // namespace

void registerRandomKernels(KernelRegistry& r) {
  r.add("", "RandomUniform", 1, [](const KernelCreateInfo& i) { return makeRandom(i, Distribution::kUniform); });
  r.add("", "RandomNormal", 1, [](const KernelCreateInfo& i) { return makeRandom(i, Distribution::kNormal); });
  r.add("", "RandomUniformLike", 1,
        [](const KernelCreateInfo& i) { return makeRandomLike(i, Distribution::kUniform); });
  r.add("", "RandomNormalLike", 1, [](const KernelCreateInfo& i) { return makeRandomLike(i, Distribution::kNormal); });
  r.add("", "Bernoulli", 15, makeBernoulli);
}

}  // namespace whittle::runtime::cpu
