#include "subgraph_float.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace whittle::passes {

void noteFloatWeightOps(const ir::Graph& graph, PassContext& ctx, std::string_view pass) {
  for (const ir::Node* n : graph.nodes()) {
    const std::string& op = n->opType();
    if (n->domain().empty() && (op == "LSTM" || op == "GRU" || op == "RNN")) {
      std::string why = "LSTM, GRU and RNN have no int8 form";
      if (op == "LSTM" && pass == "quantize-dynamic") {
        why = "LSTM, GRU and RNN have no standard int8 form; quantize-dynamic{lstm=true} writes an LSTM with constant "
              "weights as ONNX Runtime's DynamicQuantizeLSTM";
      }
      ctx.note(std::string(pass) + ": " + n->describe() + " stays float32 (" + why + ")");
    } else if (n->domain() == "com.microsoft" &&
               (op == "Attention" || (op == "FusedMatMul" && n->numInputs() > 1 && n->input(1) != nullptr &&
                                      n->input(1)->isInitializer()))) {
      ctx.note(std::string(pass) + ": " + n->describe() + " stays float32 (no int8 form here; its weights stay float)");
    }
  }
}

std::string opTypeSummary(const ir::Graph& graph, size_t limit) {
  std::map<std::string, int64_t> counts;
  for (const ir::Node* n : graph.nodes()) counts[n->domain().empty() ? n->opType() : n->domain() + "." + n->opType()]++;
  std::vector<std::pair<std::string, int64_t>> ranked(counts.begin(), counts.end());
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (size_t i = 0; i < ranked.size() && i < limit; ++i) {
    out += (i ? ", " : "") + ranked[i].first + " " + std::to_string(ranked[i].second);
  }
  if (ranked.size() > limit) out += ", ... (" + std::to_string(ranked.size()) + " op types)";
  return out;
}

}  // namespace whittle::passes
