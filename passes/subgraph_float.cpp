#include "subgraph_float.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "subgraph_note.h"
#include "whittle/onnx_io/subgraphs.h"

namespace whittle::passes {

Status warnSubgraphWeightsLeftFloat(const ir::Graph& graph, PassContext& ctx, std::string_view pass) {
  static const std::set<std::string, std::less<>> kWeighted = {"Conv", "ConvTranspose", "Gemm", "MatMul",
                                                                "LSTM", "GRU",  "RNN"};
  std::map<std::string, int64_t> byOp;
  std::vector<std::string> holders;
  int64_t total = 0;
  for (const ir::Node* n : graph.nodes()) {
    if (!n->hasSubgraphs()) continue;
    int64_t here = 0;
    for (const ir::Attribute& a : n->attributes()) {
      if (a.kind != ir::Attribute::Kind::kGraph && a.kind != ir::Attribute::Kind::kGraphs) continue;
      WH_ASSIGN_OR_RETURN(auto nodes, onnx_io::subgraphNodes(a));
      for (const onnx_io::SubgraphNode& s : nodes) {
        if (!(s.domain.empty() || s.domain == "ai.onnx") || !kWeighted.contains(s.opType)) continue;
        ++byOp[s.opType];
        ++here;
      }
    }
    if (here > 0) holders.push_back(n->describe());
    total += here;
  }
  if (total == 0) {
    noteSubgraphsLeftAlone(graph, ctx, pass, "float");
    return Status::ok();
  }
  std::string where;
  for (size_t i = 0; i < holders.size() && i < 3; ++i) where += (i ? ", " : "") + holders[i];
  if (holders.size() > 3) where += ", ...";
  std::string ops;
  for (const auto& [op, count] : byOp) ops += (ops.empty() ? "" : ", ") + std::to_string(count) + " " + op;
  return ctx.fallback(std::string(pass) + ": " + std::to_string(total) + " node" + (total == 1 ? "" : "s") +
                      " with weights inside the subgraphs of " + std::to_string(holders.size()) + " control-flow node" +
                      (holders.size() == 1 ? "" : "s") + " (" + where + ") " + (total == 1 ? "is" : "are") +
                      " left float (" + ops + "): passes do not rewrite inside subgraphs");
}

void noteFloatWeightOps(const ir::Graph& graph, PassContext& ctx, std::string_view pass) {
  for (const ir::Node* n : graph.nodes()) {
    const std::string& op = n->opType();
    if (n->domain().empty() && (op == "LSTM" || op == "GRU" || op == "RNN")) {
      ctx.note(std::string(pass) + ": " + n->describe() + " stays float32 (LSTM, GRU and RNN have no int8 form)");
    } else if (n->domain() == "com.microsoft" &&
               (op == "Attention" || (op == "FusedMatMul" && n->numInputs() > 1 && n->input(1) != nullptr &&
                                      n->input(1)->isInitializer()))) {
      ctx.note(std::string(pass) + ": " + n->describe() + " stays float32 (no int8 form here; its weights stay float)");
    }
  }
}

}  // namespace whittle::passes
