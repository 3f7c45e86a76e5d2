// fuzz_optimize: ModelProto bytes -> what `whittle optimize -O2` does (tools/cmd_optimize.cpp):
// onnx_io::loadFromBytes, passes::runPipeline over passes::pipelineForLevel(2), ir::verify,
// onnx_io::save, and a reload of the saved file.
//
// Bounded so that one input cannot allocate gigabytes or run for minutes: fold-constants runs
// the runtime's kernels on constant inputs, whose outputs can be far larger than the model.
// Inputs are skipped (not fuzzed further) when the graph has more than kMaxNodes nodes, a
// constant holds more than kMaxConstantElements elements or all of them more than
// kMaxConstantBytes, an integer constant or attribute holds a value beyond kMaxIntValue (a
// shape, repeat count or pad that would size an output; INT32/INT64 min and max, which Slice
// uses for "to the end", are allowed), a node with only constant inputs would see more than
// kMaxFoldProduct elements as the product of its inputs' sizes (a broadcast), or the graph
// uses an op whose output size is a float value (Range, Resize and Upsample scales).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/pass_manager.h"

namespace whittle::fuzz {
namespace {

constexpr size_t kMaxNodes = 128;
constexpr int64_t kMaxConstantElements = int64_t{1} << 18;
constexpr int64_t kMaxConstantBytes = int64_t{4} << 20;
constexpr int64_t kMaxIntValue = 4096;
constexpr double kMaxFoldProduct = double{1 << 22};

bool isSentinel(int64_t v) { return v == INT64_MAX || v == INT64_MIN || v == INT32_MAX || v == INT32_MIN; }

bool smallInts(const std::vector<int64_t>& values) {
  for (int64_t v : values) {
    if (!isSentinel(v) && (v > kMaxIntValue || v < -kMaxIntValue)) return false;
  }
  return true;
}

bool tensorWithinBounds(const ir::Tensor& t, int64_t* totalBytes) {
  int64_t numel = t.numel();
  if (numel > kMaxConstantElements) return false;
  *totalBytes += static_cast<int64_t>(t.byteSize());
  if (ir::isInteger(t.dtype())) {
    for (int64_t i = 0; i < numel; ++i) {
      double v = t.valueAsDouble(i);
      if (std::fabs(v) <= kMaxIntValue) continue;
      if (t.dtype() == ir::DataType::kInt64 && isSentinel(t.values<int64_t>()[static_cast<size_t>(i)])) continue;
      if (t.dtype() == ir::DataType::kInt32 && isSentinel(static_cast<int64_t>(v))) continue;
      return false;
    }
  }
  return true;
}

// Whether the -O2 pipeline on this model stays within the bounds above.
bool withinBounds(const ir::Graph& graph) {
  if (graph.numNodes() > kMaxNodes) return false;
  int64_t totalBytes = 0;
  for (const ir::Value* v : graph.initializers()) {
    if (v->constant() != nullptr && !tensorWithinBounds(*v->constant(), &totalBytes)) return false;
  }
  for (const ir::Node* n : graph.nodes()) {
    const std::string& op = n->opType();
    if (op == "Range" || op == "Resize" || op == "Upsample") return false;
    for (const ir::Attribute& a : n->attributes()) {
      if (a.kind == ir::Attribute::Kind::kInt && !smallInts({a.i})) return false;
      if (a.kind == ir::Attribute::Kind::kInts && !smallInts(a.ints)) return false;
      if (a.kind == ir::Attribute::Kind::kTensor && !tensorWithinBounds(a.t, &totalBytes)) return false;
      for (const ir::Tensor& t : a.tensors) {
        if (!tensorWithinBounds(t, &totalBytes)) return false;
      }
    }
    double product = 1;
    bool allConstant = true;
    for (const ir::Value* in : n->inputs()) {
      if (in == nullptr) continue;
      const ir::Tensor* c = passes::constantOf(in);
      if (c == nullptr) {
        allConstant = false;
        break;
      }
      product *= static_cast<double>(std::max<int64_t>(c->numel(), 1));
    }
    if (allConstant && product > kMaxFoldProduct) return false;
  }
  return totalBytes <= kMaxConstantBytes;
}

}  // namespace
}  // namespace whittle::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  static const std::string output = fuzz::scratchDir() + "/optimized.onnx";
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto model = onnx_io::loadFromBytes(bytes, fuzz::modelFolder(), "fuzz.onnx");
  if (!model.isOk()) {
    fuzz::checkNotInternal(model.status(), "loadFromBytes");
    return 0;
  }
  if (!fuzz::withinBounds(*model->graph)) return -1;  // not added to the corpus
  bool validInput = ir::verify(*model->graph).isOk();

  passes::PassContext ctx(*model);
  auto stats = passes::runPipeline(*model, passes::pipelineForLevel(2), ctx);
  if (!stats.isOk()) {
    fuzz::checkNotInternal(stats.status(), "runPipeline");
    return 0;
  }
  Status verified = ir::verify(*model->graph);
  if (validInput && !verified.isOk()) fuzz::fail("-O2 broke a graph that passed the verifier: " + verified.message());
  model->setMetadata("whittle.pipeline", passes::printPipeline(passes::pipelineForLevel(2)));
  Status saved = onnx_io::save(*model, output);
  if (!saved.isOk()) {
    fuzz::checkNotInternal(saved, "save");
    return 0;
  }
  auto reloaded = onnx_io::load(output);
  if (!reloaded.isOk()) fuzz::fail("an optimized model was saved that does not load: " + reloaded.status().message());
  return 0;
}
