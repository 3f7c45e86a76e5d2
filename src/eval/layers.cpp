// Per-layer matching by name, through QDQ pairs and over fused elementwise chains.
#include "whittle/eval/layers.h"

#include <set>
#include <unordered_map>

namespace whittle::eval {
namespace {

bool isFloatType(ir::DataType t) {
  return t == ir::DataType::kFloat || t == ir::DataType::kFloat16 || t == ir::DataType::kBFloat16 ||
         t == ir::DataType::kDouble;
}

/// Ops that optimizers fold into the producer of their input (epilogue fusions).
bool isFusable(const std::string& opType) {
  static const std::set<std::string> kOps = {"Add",  "Sub",       "Mul",      "Div",     "BatchNormalization",
                                             "Relu", "LeakyRelu", "Clip",     "Sigmoid", "HardSigmoid",
                                             "Tanh", "HardSwish", "Identity", "Softplus"};
  return kOps.count(opType) != 0;
}

/// The last value of the chain of single-use fusable ops that starts at `value` and whose
/// outputs are all absent from `optimized`: what a fused node that kept the name of the first
/// value computes (Conv -> Add -> Relu fused into one Conv named after the Conv's output).
const ir::Value* fusedChainEnd(const ir::Value* value, const ir::Graph& optimized) {
  const ir::Value* end = value;
  while (end->uses().size() == 1 && !end->isGraphOutput()) {
    const ir::Node* user = end->uses()[0].user;
    if (end->uses()[0].implicit() || !isFusable(user->opType()) || user->output(0) == nullptr) break;
    const ir::Value* next = user->output(0);
    if (optimized.findValue(next->name()) != nullptr || next->isGraphOutput()) break;
    end = next;
  }
  return end;
}

}  // namespace

std::vector<LayerMetrics> matchLayers(const ir::Graph& original, const ir::Graph& optimized) {
  // Original tensor name -> the optimized DequantizeLinear output that carries it.
  std::unordered_map<std::string, std::string> viaQdq;
  for (const ir::Node* node : optimized.nodes()) {
    if (node->opType() != "DequantizeLinear" || !node->domain().empty() || node->output(0) == nullptr) continue;
    const ir::Value* q = node->input(0);
    const ir::Node* quant = q != nullptr ? q->producer() : nullptr;
    if (quant == nullptr || quant->opType() != "QuantizeLinear" || quant->input(0) == nullptr) continue;
    viaQdq.emplace(quant->input(0)->name(), node->output(0)->name());
  }
  // Original tensor -> (optimized tensor, how it matched).
  std::unordered_map<std::string, std::pair<std::string, std::string>> found;
  for (const ir::Node* node : original.nodes()) {
    if (node->opType() == "Constant") continue;
    for (size_t k = 0; k < node->numOutputs(); ++k) {
      const ir::Value* out = node->output(k);
      if (out == nullptr || out->isGraphOutput() || out->isInitializer()) continue;
      // Not activations: Dropout's mask, and values declared with a non-float type (shapes, indices).
      if ((node->opType() == "Dropout" && k > 0) ||
          (out->dtype() != ir::DataType::kUndefined && !isFloatType(out->dtype()))) {
        continue;
      }
      // A QDQ pair on the tensor wins over the tensor itself: its output is what the next
      // layer reads, so it carries the activation's quantization error too.
      const ir::Value* same = optimized.findValue(out->name());
      const ir::Value* dq = nullptr;
      if (auto it = viaQdq.find(out->name()); it != viaQdq.end()) dq = optimized.findValue(it->second);
      std::pair<std::string, std::string> match;
      if (dq != nullptr && !dq->isGraphOutput()) {
        match = {dq->name(), "qdq"};
      } else if (same != nullptr && same->producer() != nullptr && !same->isInitializer() && !same->isGraphOutput()) {
        match = {same->name(), "name"};
      } else {
        continue;
      }
      // When the ops after the tensor are gone from the optimized model, they were fused
      // into its producer: the optimized tensor holds the end of that chain.
      const ir::Value* end = fusedChainEnd(out, optimized);
      if (end != out) {
        if (end->dtype() != ir::DataType::kUndefined && !isFloatType(end->dtype())) continue;
        match.second = "fused-" + match.second;
      }
      found.emplace(end->name(), std::move(match));
    }
  }
  std::vector<LayerMetrics> layers;
  for (const ir::Node* node : original.nodes()) {
    for (const ir::Value* out : node->outputs()) {
      auto it = out != nullptr ? found.find(out->name()) : found.end();
      if (it == found.end()) continue;
      LayerMetrics layer;
      layer.tensor = out->name();
      layer.opType = node->opType();
      layer.node = node->name();
      layer.optimizedTensor = it->second.first;
      layer.match = it->second.second;
      layers.push_back(std::move(layer));
      found.erase(it);
    }
  }
  return layers;
}

}  // namespace whittle::eval
