// Element-wise QDQ chains as one int8 table lookup (see lowering.h, lowerQdqLookups).
//
// Before: yq = Q(Mul(DQ(xq), Sigmoid(DQ(xq))))                  (SiLU, float in between)
//         yq = Q(DQ(xq)) with other parameters                  (a requantization)
//         yq = Q(Mul(DQ(xq), DQ(Q(Sigmoid(DQ(xq))))))           (SiLU, QDQ groups as ORT writes them)
//         yq = Q(LeakyRelu(DQ(xq))), Q(HardSwish(DQ(xq))), Q(Mul(DQ(xq), Div(Clip(Add(DQ(xq), 3), 0, 6), 6)))
// After:  yq = com.whittle.internal.QLinearLookup(xq, table)   table[b] = the chain at the code whose byte is b
// and Q(DQ(xq)) with the same parameters on both sides is xq itself.
//
// Every value in between is a function of the one 8-bit tensor xq, so the chain has 256 possible
// results; they are computed once here, float op by float op, with each QuantizeLinear and
// DequantizeLinear inside the chain rounded as the kernels round (so an intermediate Q of the
// QDQ form is reproduced exactly, not skipped).
//
// Requires: one source tensor (uint8/int8) behind every DequantizeLinear leaf of the chain, each
// Q/DQ per tensor with constant parameters, every other operand a one-element float constant,
// every op in the list below, and every value inside the chain read only by the chain and not
// pinned (a leaf DequantizeLinear may have other readers: it stays for them).
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/quant/qdq_groups.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;
constexpr const char* kInternalDomain = "com.whittle.internal";
constexpr size_t kCodes = 256;
using Column = std::vector<float>;  // one value per code of the source

bool isQuantType(ir::DataType t) { return t == ir::DataType::kUint8 || t == ir::DataType::kInt8; }

bool isElementwise(const ir::Node& n) { return quant::isTableOp(n); }

/// The per-tensor parameters of a Q or DQ with constant scale and zero point.
struct QParams {
  float scale = 1;
  int32_t zeroPoint = 0;
  ir::DataType type = ir::DataType::kUndefined;
  int32_t lo() const { return type == ir::DataType::kUint8 ? 0 : -128; }
  int32_t hi() const { return type == ir::DataType::kUint8 ? 255 : 127; }
};

std::optional<QParams> qparamsOf(const ir::Node& n) {
  if (n.numInputs() < 2 || n.numOutputs() != 1 || n.attrInt("block_size", 0) != 0) return std::nullopt;
  const ir::Tensor* s = ir::constantOf(n.input(1), kSession);
  if (s == nullptr || s->dtype() != ir::DataType::kFloat || s->numel() != 1) return std::nullopt;
  QParams p;
  p.scale = s->data<float>()[0];
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) return std::nullopt;
  const ir::Value* zpv = n.numInputs() > 2 ? n.input(2) : nullptr;
  if (zpv != nullptr) {
    const ir::Tensor* zp = ir::constantOf(zpv, kSession);
    if (zp == nullptr || zp->numel() != 1) return std::nullopt;
    p.type = zp->dtype();
    p.zeroPoint = static_cast<int32_t>(zp->valueAsDouble(0));
  } else if (n.opType() == "QuantizeLinear") {
    p.type = static_cast<ir::DataType>(n.attrInt("output_dtype", static_cast<int64_t>(ir::DataType::kUint8)));
  } else {
    p.type = n.input(0)->dtype();
  }
  if (!isQuantType(p.type)) return std::nullopt;
  return p;
}

/// Rounds as the QuantizeLinear kernel does: clamp(x / scale) to the range less the zero point,
/// round half to even, add the zero point. NaN goes to the lowest code.
float quantizeCode(float x, const QParams& p) {
  float v = x / p.scale;
  const float lo = static_cast<float>(p.lo() - p.zeroPoint), hi = static_cast<float>(p.hi() - p.zeroPoint);
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return std::nearbyint(v) + static_cast<float>(p.zeroPoint);
}

class LookupLowering {
 public:
  LookupLowering(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) : graph_(graph), keep_(keep) {}

  int64_t run() {
    // Last first: a chain that runs through an inner Q (the QDQ form of SiLU) is taken whole
    // before the inner Q could become a table of its own.
    std::vector<ir::Node*> quantizes;
    for (ir::Node* n : graph_.nodes()) {
      if (ir::isDefaultDomainOp(*n, {"QuantizeLinear"})) quantizes.push_back(n);
    }
    int64_t count = 0;
    for (auto it = quantizes.rbegin(); it != quantizes.rend(); ++it) {
      if (erased_.contains(*it)) continue;
      if (lower(*it)) ++count;
    }
    return count;
  }

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }

  // The walk, from the final Q's input back to the DQ leaves.
  struct Walk {
    std::vector<ir::Node*> order;  // inputs before readers
    std::unordered_set<ir::Node*> seen;
    std::unordered_set<ir::Node*> leaves;  // DQs of the source
    const ir::Value* source = nullptr;
  };

  bool collect(const ir::Value* v, Walk& w) {
    if (v == nullptr) return false;
    if (const ir::Tensor* c = ir::constantOf(v, kSession); c != nullptr) {
      return c->dtype() == ir::DataType::kFloat && c->numel() == 1;
    }
    ir::Node* p = const_cast<ir::Node*>(v->producer());
    if (p == nullptr || p->numOutputs() != 1) return false;
    if (w.seen.contains(p)) return true;
    if (ir::isDefaultDomainOp(*p, {"DequantizeLinear"})) {
      if (!qparamsOf(*p)) return false;
      const ir::Value* data = p->input(0);
      const ir::Node* dp = data->producer();
      // Through an inner Q when the chain goes on behind it; else the DQ reads the source.
      if (dp != nullptr && ir::isDefaultDomainOp(*dp, {"QuantizeLinear"}) && dp->input(0) != nullptr &&
          dp->input(0)->producer() != nullptr && isElementwise(*dp->input(0)->producer())) {
        Walk trial = w;
        if (collect(data, trial)) {
          w = std::move(trial);
          w.seen.insert(p);
          w.order.push_back(p);
          return true;
        }
      }
      const ir::DataType dataType = data->dtype() != ir::DataType::kUndefined ? data->dtype() : qparamsOf(*p)->type;
      if (!isQuantType(dataType) || dataType != qparamsOf(*p)->type || ir::constantOf(data, kSession) != nullptr) {
        return false;
      }
      if (w.source != nullptr && w.source != data) return false;
      w.source = data;
      w.seen.insert(p);
      w.leaves.insert(p);
      w.order.push_back(p);
      return true;
    }
    if (ir::isDefaultDomainOp(*p, {"QuantizeLinear"})) {
      if (!qparamsOf(*p) || !collect(p->input(0), w)) return false;
    } else if (isElementwise(*p)) {
      if (p->numInputs() == 0) return false;
      for (size_t i = 0; i < p->numInputs(); ++i) {
        if (p->input(i) == nullptr) continue;
        const ir::DataType t = p->input(i)->dtype();
        if (t != ir::DataType::kFloat && t != ir::DataType::kUndefined && ir::constantOf(p->input(i), kSession) == nullptr) {
          return false;
        }
        if (!collect(p->input(i), w)) return false;
      }
    } else {
      return false;
    }
    w.seen.insert(p);
    w.order.push_back(p);
    return true;
  }

  /// Float operand `v`: a column of the chain, or a one-element constant broadcast.
  const Column* operand(const ir::Value* v, std::unordered_map<const ir::Value*, Column>& cols, Column& scratch) {
    if (auto it = cols.find(v); it != cols.end()) return &it->second;
    const ir::Tensor* c = ir::constantOf(v, kSession);
    if (c == nullptr) return nullptr;
    scratch.assign(kCodes, c->data<float>()[0]);
    return &scratch;
  }

  std::optional<Column> evaluate(const ir::Node& n, std::unordered_map<const ir::Value*, Column>& cols) {
    Column a0, a1, a2;
    const Column* x = operand(n.input(0), cols, a0);
    if (x == nullptr) return std::nullopt;
    const std::string& op = n.opType();
    Column y(kCodes);
    auto unary = [&](auto f) {
      for (size_t i = 0; i < kCodes; ++i) y[i] = f((*x)[i]);
      return y;
    };
    if (op == "QuantizeLinear") {
      QParams p = *qparamsOf(n);
      return unary([&](float v) { return quantizeCode(v, p); });
    }
    if (op == "DequantizeLinear") {
      QParams p = *qparamsOf(n);
      return unary([&](float v) { return (v - static_cast<float>(p.zeroPoint)) * p.scale; });
    }
    if (op == "Sigmoid") return unary([](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    if (op == "Tanh") return unary([](float v) { return std::tanh(v); });
    if (op == "Relu") return unary([](float v) { return v > 0.0f ? v : 0.0f; });
    if (op == "Identity") return *x;
    if (op == "Exp") return unary([](float v) { return std::exp(v); });
    if (op == "Neg") return unary([](float v) { return -v; });
    if (op == "Abs") return unary([](float v) { return std::fabs(v); });
    if (op == "Erf") return unary([](float v) { return std::erf(v); });
    if (op == "Sqrt") return unary([](float v) { return std::sqrt(v); });
    if (op == "Reciprocal") return unary([](float v) { return 1.0f / v; });
    if (op == "Softplus") return unary([](float v) { return std::log1p(std::exp(v)); });
    if (op == "Mish") return unary([](float v) { return v * std::tanh(std::log1p(std::exp(v))); });
    if (op == "LeakyRelu") {
      const float alpha = n.attrFloat("alpha", 0.01f);
      return unary([&](float v) { return v >= 0.0f ? v : v * alpha; });
    }
    if (op == "Elu") {
      const float alpha = n.attrFloat("alpha", 1.0f);
      return unary([&](float v) { return v >= 0.0f ? v : alpha * (std::exp(v) - 1.0f); });
    }
    if (op == "HardSigmoid") {
      const float alpha = n.attrFloat("alpha", 0.2f), beta = n.attrFloat("beta", 0.5f);
      return unary([&](float v) { return std::fmax(0.0f, std::fmin(1.0f, alpha * v + beta)); });
    }
    if (op == "HardSwish") {
      return unary([](float v) { return v * std::fmax(0.0f, std::fmin(1.0f, v / 6.0f + 0.5f)); });
    }
    if (op == "Clip") {
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (n.hasAttribute("min") || n.hasAttribute("max")) {
        lo = n.attrFloat("min", lo);
        hi = n.attrFloat("max", hi);
      }
      for (size_t i = 1; i < n.numInputs() && i < 3; ++i) {
        if (n.input(i) == nullptr) continue;
        auto b = ir::scalarConstant(n.input(i), kSession);
        if (!b) return std::nullopt;
        (i == 1 ? lo : hi) = static_cast<float>(*b);
      }
      return unary([&](float v) { return v < lo ? lo : (v > hi ? hi : v); });
    }
    if (n.numInputs() != 2) return std::nullopt;
    const Column* b = operand(n.input(1), cols, a1);
    if (b == nullptr) return std::nullopt;
    auto binary = [&](auto f) {
      for (size_t i = 0; i < kCodes; ++i) y[i] = f((*x)[i], (*b)[i]);
      return y;
    };
    if (op == "Add") return binary([](float p, float q) { return p + q; });
    if (op == "Sub") return binary([](float p, float q) { return p - q; });
    if (op == "Mul") return binary([](float p, float q) { return p * q; });
    if (op == "Div") return binary([](float p, float q) { return p / q; });
    if (op == "Max") return binary([](float p, float q) { return std::fmax(p, q); });
    if (op == "Min") return binary([](float p, float q) { return std::fmin(p, q); });
    if (op == "Pow") return binary([](float p, float q) { return std::pow(p, q); });
    if (op == "PRelu") return binary([](float p, float q) { return p < 0.0f ? p * q : p; });
    (void)a2;
    return std::nullopt;
  }

  bool lower(ir::Node* q) {
    auto out = qparamsOf(*q);
    if (!out || q->output(0) == nullptr || q->input(0) == nullptr) return false;
    const ir::DataType inType = q->input(0)->dtype();
    if (inType != ir::DataType::kFloat && inType != ir::DataType::kUndefined) return false;
    Walk w;
    if (!collect(q->input(0), w) || w.source == nullptr) return false;
    // A bare DQ -> Q: nothing when both have the same parameters, else a requantizing table.
    bool anyOp = false;
    for (const ir::Node* n : w.order) anyOp = anyOp || isElementwise(*n);
    if (!anyOp) {
      if (w.order.size() != 1) return false;
      const QParams in = *qparamsOf(*w.order[0]);
      if (in.type == out->type && in.zeroPoint == out->zeroPoint &&
          std::memcmp(&in.scale, &out->scale, sizeof(float)) == 0) {
        if (pinned(q->output(0))) return false;
        graph_.replaceAllUsesWith(q->output(0), const_cast<ir::Value*>(w.source));
        erased_.insert(q);
        graph_.eraseNode(q);
        return true;
      }
    }
    // A one-element constant of a higher rank than the source would broadcast the output to
    // more dims than the table keeps: such a chain stays as it is.
    const auto& sourceShape = w.source->type().shape;
    const int64_t sourceRank = sourceShape ? static_cast<int64_t>(sourceShape->size()) : 1;
    for (const ir::Node* n : w.order) {
      for (const ir::Value* in : n->inputs()) {
        const ir::Tensor* c = in != nullptr ? ir::constantOf(in, kSession) : nullptr;
        if (c != nullptr && n->opType() != "DequantizeLinear" && n->opType() != "QuantizeLinear" && c->rank() > sourceRank) {
          return false;
        }
      }
    }
    // Values inside the chain: read only by it, not pinned (leaf DQs may have other readers).
    std::unordered_set<const ir::Node*> inChain(w.order.begin(), w.order.end());
    inChain.insert(q);
    std::vector<ir::Node*> removed;
    for (ir::Node* n : w.order) {
      const ir::Value* v = n->output(0);
      bool outside = pinned(v);
      for (const ir::Value::Use& u : v->uses()) outside = outside || !inChain.contains(u.user);
      if (outside) {
        if (!w.leaves.contains(n)) return false;
        continue;
      }
      removed.push_back(n);
    }
    // The table: the chain at every code of the source.
    const ir::DataType srcType = qparamsOf(**w.leaves.begin())->type;
    std::unordered_map<const ir::Value*, Column> cols;
    Column codes(kCodes);
    for (size_t b = 0; b < kCodes; ++b) {
      codes[b] = srcType == ir::DataType::kInt8 ? static_cast<float>(static_cast<int8_t>(b)) : static_cast<float>(b);
    }
    cols[w.source] = codes;
    for (const ir::Node* n : w.order) {
      auto col = evaluate(*n, cols);
      if (!col) return false;
      cols[n->output(0)] = std::move(*col);
    }
    auto last = evaluate(*q, cols);
    if (!last) return false;
    ir::Tensor table(out->type, {static_cast<int64_t>(kCodes)});
    uint8_t* dst = reinterpret_cast<uint8_t*>(table.mutableRawData());
    for (size_t b = 0; b < kCodes; ++b) {
      const auto code = static_cast<int32_t>((*last)[b]);
      dst[b] = static_cast<uint8_t>(out->type == ir::DataType::kInt8 ? static_cast<uint8_t>(static_cast<int8_t>(code))
                                                                     : static_cast<uint8_t>(code));
    }
    ir::Value* tableValue = graph_.addInitializer(graph_.uniqueValueName(q->output(0)->name() + "_table"), std::move(table));
    removed.push_back(q);
    const std::string name = q->input(0)->producer()->name();
    ir::replaceChain(graph_, removed, q->output(0), "QLinearLookup", kInternalDomain, name,
                     {const_cast<ir::Value*>(w.source), tableValue}, {});
    for (ir::Node* n : removed) erased_.insert(n);
    return true;
  }

  ir::Graph& graph_;
  const std::unordered_set<const ir::Value*>& keep_;
  std::unordered_set<const ir::Node*> erased_;
};

}  // namespace

int64_t lowerQdqLookups(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) {
  return LookupLowering(graph, keep).run();
}

}  // namespace whittle::runtime
