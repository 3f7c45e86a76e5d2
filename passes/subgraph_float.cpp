#include "subgraph_float.h"

#include <string>

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

}  // namespace whittle::passes
