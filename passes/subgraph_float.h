#pragma once
// Internal to passes/: what a quantizer says about the work it cannot reach inside subgraphs
// (If branches, Loop and Scan bodies, which the IR keeps serialized and passes do not rewrite).

#include <string_view>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// For a quantizer: when subgraphs hold nodes with weights (Conv, ConvTranspose, Gemm, MatMul,
/// LSTM, GRU, RNN, nested bodies included), a fallback (a warning and a report line; an error
/// under --strict) that counts them: "quantize-int8: 44 nodes with weights inside the subgraphs
/// of 1 control-flow node (If 'vad') are left float (36 Conv, 8 LSTM): passes do not rewrite
/// inside subgraphs". Other subgraphs get noteSubgraphsLeftAlone's note; nothing without any.
Status warnSubgraphWeightsLeftFloat(const ir::Graph& graph, PassContext& ctx, std::string_view pass);

/// For a quantizer: a note for each node with weights that has no int8 form here, so that a
/// float op is never a surprise: LSTM, GRU, RNN, and the com.microsoft Attention (packed QKV
/// weights) and FusedMatMul with a constant B that ONNX Runtime's transformer tools write.
/// "quantize-int8: LSTM 'l1' stays float32 (LSTM, GRU and RNN have no int8 form)",
/// "quantize-dynamic: com.microsoft.Attention 'a' stays float32 (no int8 form here; its weights stay float)".
void noteFloatWeightOps(const ir::Graph& graph, PassContext& ctx, std::string_view pass);

}  // namespace whittle::passes
