#pragma once
// Internal to passes/: what a quantizer says about the nodes with weights it leaves float (the
// quantizers call it on the main graph and on every If/Loop/Scan body they decode).

#include <string>
#include <string_view>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// For a quantizer: a note for each node with weights that has no int8 form here, so that a
/// float op is never a surprise: LSTM, GRU, RNN, and the com.microsoft Attention (packed QKV
/// weights) and FusedMatMul with a constant B that ONNX Runtime's transformer tools write.
/// "quantize-int8: LSTM 'l1' stays float32 (LSTM, GRU and RNN have no int8 form)",
/// "quantize-dynamic: com.microsoft.Attention 'a' stays float32 (no int8 form here; its weights stay float)".
void noteFloatWeightOps(const ir::Graph& graph, PassContext& ctx, std::string_view pass);

/// The op types of `graph`'s nodes with their counts, most frequent first, at most `limit`
/// ("ai.onnx.ml.TreeEnsembleClassifier 1, ai.onnx.ml.ZipMap 1"): what a quantizer that found
/// nothing to quantize names, so that "no node to quantize" says what the model is made of.
std::string opTypeSummary(const ir::Graph& graph, size_t limit = 6);

}  // namespace whittle::passes
