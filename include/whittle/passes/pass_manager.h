#pragma once

#include <functional>
#include <string>
#include <vector>

#include "whittle/passes/registry.h"

namespace whittle::passes {

struct PipelineRunOptions {
  /// Run the IR verifier and the ONNX checker after every pass.
  bool verifyEach = false;
  /// Pass names after which `dump` receives a textual dump of the graph.
  std::vector<std::string> printAfter;
  std::function<void(const std::string& pass, const std::string& text)> dump;
};

/// Runs the pipeline in order, recording statistics per pass. The model is changed in place;
/// on error it may be half-transformed, so callers run on a copy they can drop.
Expected<std::vector<PassStats>> runPipeline(ir::Model& model, const std::vector<PipelineEntry>& pipeline,
                                             PassContext& ctx, const PipelineRunOptions& options = {});

/// A readable listing of the graph: one line per node with inputs, outputs and attributes.
std::string dumpGraph(const ir::Graph& graph);

/// Bytes of all initializers and Constant-node tensors.
int64_t parameterBytes(const ir::Graph& graph);

}  // namespace whittle::passes
