#include "fold_util.h"

#include <cmath>
#include <functional>
#include <set>

#include "subgraph_bodies.h"
#include "whittle/ir/match.h"

namespace whittle::passes {

std::vector<double> perChannelValues(const ir::Tensor& t, int64_t channels, int64_t rank) {
  // A constant of higher rank than the Conv output would broadcast it to more dims.
  if (t.rank() > rank) return {};
  if (t.numel() == 1) return std::vector<double>(static_cast<size_t>(channels), t.valueAsDouble(0));
  if (t.numel() != channels) return {};
  // Accept [C,1,...,1] (rank - 1 dims) and [1,C,1,...,1] (rank dims), leading 1s optional.
  const auto& d = t.dims();
  int64_t trailing = rank - 2;  // spatial dims after the channel axis
  if (static_cast<int64_t>(d.size()) < trailing + 1) return {};
  for (int64_t i = 0; i < trailing; ++i) {
    if (d[d.size() - 1 - static_cast<size_t>(i)] != 1) return {};
  }
  if (d[d.size() - 1 - static_cast<size_t>(trailing)] != channels) return {};
  for (size_t i = 0; i + 1 + static_cast<size_t>(trailing) < d.size(); ++i) {
    if (d[i] != 1) return {};
  }
  if (static_cast<int64_t>(d.size()) > rank) return {};
  return ir::toDoubles(t);
}

std::optional<ConvWithConstant> matchConvWithConstant(const ir::Node& root) {
  if (root.numInputs() != 2) return std::nullopt;
  for (size_t i = 0; i < 2; ++i) {
    const ir::Value* a = root.input(i);
    const ir::Value* b = root.input(1 - i);
    if (a == nullptr || b == nullptr) continue;
    ir::Node* conv = ir::producerIs(a, "Conv");
    if (conv == nullptr) continue;
    const ir::Tensor* w = ir::constantOf(conv->input(1));
    const ir::Tensor* c = ir::constantOf(b);
    if (w == nullptr || c == nullptr || !ir::isFloatTensor(*w) || c->dtype() != w->dtype() || w->rank() < 3) continue;
    if (conv->input(2) != nullptr && !ir::isFloatConstant(conv->input(2))) continue;
    std::vector<double> values = perChannelValues(*c, w->dims()[0], w->rank());
    if (values.empty()) continue;
    return ConvWithConstant{conv, std::move(values), i};
  }
  return std::nullopt;
}

void replaceConvParameters(ir::Node& conv, ir::Tensor weight, ir::Tensor bias) {
  ir::Graph& graph = conv.graph();
  ir::Value* w = graph.addInitializer(conv.input(1)->name() + "_fused", std::move(weight));
  std::string biasName = conv.input(2) ? conv.input(2)->name() + "_fused" : conv.output(0)->name() + "_bias";
  ir::Value* b = graph.addInitializer(biasName, std::move(bias));
  conv.setInput(1, w);
  if (conv.numInputs() < 3) {
    conv.addInput(b);
  } else {
    conv.setInput(2, b);
  }
}

bool bnAffine(const ir::Node& bn, int64_t channels, std::vector<double>& factor, std::vector<double>& shift) {
  if (!ir::isDefaultDomainOp(bn, {"BatchNormalization"}) || bn.attrInt("training_mode", 0) != 0) return false;
  if (bn.numOutputs() > 1 && bn.output(1) != nullptr) return false;
  for (size_t i = 1; i <= 4; ++i) {
    if (!ir::isFloatConstant(bn.input(i)) || ir::constantOf(bn.input(i))->numel() != channels) return false;
  }
  std::vector<double> scale = ir::toDoubles(*ir::constantOf(bn.input(1)));
  std::vector<double> beta = ir::toDoubles(*ir::constantOf(bn.input(2)));
  std::vector<double> mean = ir::toDoubles(*ir::constantOf(bn.input(3)));
  std::vector<double> var = ir::toDoubles(*ir::constantOf(bn.input(4)));
  double eps = bn.attrFloat("epsilon", 1e-5f);
  factor.resize(static_cast<size_t>(channels));
  shift.resize(static_cast<size_t>(channels));
  for (size_t c = 0; c < factor.size(); ++c) {
    factor[c] = scale[c] / std::sqrt(var[c] + eps);
    shift[c] = beta[c] - mean[c] * factor[c];
  }
  return true;
}

Expected<int64_t> foldComputedConstants(ir::Model& model, const std::vector<const ir::Value*>& values, const PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  // The nodes between each value and the constants it is computed from; a value whose way back
  // meets anything else adds none of them.
  std::set<const ir::Node*> chain;
  for (const ir::Value* value : values) {
    std::set<const ir::Node*> mine;
    std::function<bool(const ir::Value*)> collect = [&](const ir::Value* v) {
      if (v == nullptr || constantOf(v) != nullptr) return true;
      const ir::Node* p = v->producer();
      if (p == nullptr || !ir::foldableOp(*p)) return false;
      if (chain.contains(p) || mine.contains(p)) return true;
      for (const ir::Value* out : p->outputs()) {
        if (out != nullptr && out->isGraphOutput()) return false;
      }
      for (const ir::Value* in : p->inputs()) {
        if (!collect(in)) return false;
      }
      mine.insert(p);
      return true;
    };
    if (collect(value)) chain.insert(mine.begin(), mine.end());
  }
  if (chain.empty()) return int64_t{0};
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  WH_ASSIGN_OR_RETURN(const runtime::Backend* backend, runtime::backendFor(ctx.device));
  int64_t folded = 0;
  for (ir::Node* node : graph.nodes()) {
    if (!chain.contains(node)) continue;
    std::vector<const ir::Tensor*> inputs;
    bool ready = true;
    for (const ir::Value* in : node->inputs()) {
      inputs.push_back(in != nullptr ? constantOf(in) : nullptr);
      ready = ready && (in == nullptr || inputs.back() != nullptr);
    }
    const int64_t opset = model.opsetVersion(node->domain());
    if (!ready || !backend->supports(*node, opset)) continue;  // an input left unfolded, or no kernel
    auto outputs = runtime::evaluateNode(*node, opset, inputs, ctx.threads, *backend);
    if (!outputs.isOk()) {
      if (outputs.status().code() == StatusCode::kUnimplemented) continue;
      return outputs.status().withContext("evaluating " + node->describe());
    }
    ir::replaceOutputsWithConstants(graph, *node, std::move(*outputs));
    ++folded;
  }
  removeDeadNodes(graph);
  return folded;
}

Expected<int64_t> foldBodyComputedConstants(DecodedBody& body, const std::vector<ir::Value*>& values, int64_t opset,
                                            const PassContext& ctx) {
  ir::Graph& graph = body.graph();
  int64_t folded = 0;
  const runtime::Backend* backend = nullptr;
  for (ir::Value* v : values) {
    if (v == nullptr || constantIn(v, &body) != nullptr || v->isGraphOutput() || v->hasImplicitUses()) continue;
    ir::Node* p = v->producer();
    if (p == nullptr || !ir::foldableOp(*p) || p->numOutputs() != 1 || !p->domain().empty()) continue;
    std::vector<const ir::Tensor*> inputs;
    bool ready = true;
    for (const ir::Value* in : p->inputs()) {
      inputs.push_back(in != nullptr ? constantIn(in, &body) : nullptr);
      ready = ready && (in == nullptr || inputs.back() != nullptr);
    }
    if (!ready) continue;
    if (backend == nullptr) {
      WH_ASSIGN_OR_RETURN(backend, runtime::backendFor(ctx.device));
    }
    if (!backend->supports(*p, opset)) continue;
    auto outputs = runtime::evaluateNode(*p, opset, inputs, ctx.threads, *backend);
    if (!outputs.isOk()) {
      if (outputs.status().code() == StatusCode::kUnimplemented) continue;
      return outputs.status().withContext("evaluating " + p->describe() + " in " + body.label());
    }
    ir::Value* c = graph.addInitializer(graph.uniqueValueName(v->name() + "_folded"), std::move((*outputs)[0]));
    graph.replaceAllUsesWith(v, c);
    graph.eraseNode(p);
    ++folded;
  }
  return folded;
}

}  // namespace whittle::passes
