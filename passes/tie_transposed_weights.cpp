// tie-transposed-weights
// Before: E [V, D] (read by Gather), H [D, V] = E^T stored again (read by MatMul)
// After:  H is gone; the MatMul reads Transpose(E, perm=[1,0])
// torch.onnx.export's TorchScript exporter writes a tied LM head (GPT-2, T5, Gemma, BLOOM, BART:
// any model with tie_word_embeddings) as a second, transposed copy of the embedding: GPT-2 small's
// file is 652 MB instead of 497 MB, and a 4-bit pass quantizes the vocabulary twice. The
// runtime reads the transposed form without copying it (a MatMul with a transposed constant B),
// and fold-constants leaves a Transpose of a weight that another node reads alone.
// Only 2-D initializers of at least 1 MiB whose bytes are exactly the other's transpose; not
// graph inputs (an overridable initializer) or outputs, not read by a subgraph.
#include <cstring>
#include <map>
#include <utility>

#include "pass_factories.h"

namespace whittle::passes {
namespace {

// fold-constants writes a Transpose back as a new weight when that grows the model by less than
// its max-growth-bytes (1 MiB by default): below that, tying would not outlast the next -O run.
constexpr size_t kMinBytes = size_t{1} << 20;

bool candidate(const ir::Value* v) {
  const ir::Tensor& t = *v->constant();
  if (v->isGraphInput() || v->isGraphOutput() || v->hasImplicitUses() || t.rank() != 2) return false;
  if (t.dtype() == ir::DataType::kString || t.byteSize() < kMinBytes) return false;
  return ir::elementSize(t.dtype()) * static_cast<size_t>(t.numel()) == t.byteSize();  // whole bytes per element
}

/// True when b's bytes are a's transposed: b[j][i] == a[i][j] for a [rows, cols], b [cols, rows].
bool isTransposeOf(const ir::Tensor& a, const ir::Tensor& b) {
  const int64_t rows = a.dims()[0], cols = a.dims()[1];
  if (b.dims()[0] != cols || b.dims()[1] != rows) return false;
  const size_t e = ir::elementSize(a.dtype());
  const auto* pa = reinterpret_cast<const unsigned char*>(a.rawData());
  const auto* pb = reinterpret_cast<const unsigned char*>(b.rawData());
  auto same = [&](int64_t i, int64_t j) { return std::memcmp(pa + (i * cols + j) * e, pb + (j * rows + i) * e, e) == 0; };
  // A few scattered elements first: unrelated weights of swapped shapes differ there.
  for (int64_t k = 0; k < 16; ++k) {
    if (!same((k * 7919) % rows, (k * 104729) % cols)) return false;
  }
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      if (!same(i, j)) return false;
    }
  }
  return true;
}

bool readByGather(const ir::Value* v) {
  for (const ir::Value::Use& u : v->uses()) {
    if (u.user != nullptr && u.user->opType() == "Gather") return true;
  }
  return false;
}

class TieTransposedWeights final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    ir::Graph& graph = *model.graph;
    // Candidates grouped by dtype and the unordered pair of dims: a transposed copy lands in its
    // original's group.
    std::map<std::tuple<int, int64_t, int64_t>, std::vector<ir::Value*>> groups;
    for (ir::Value* v : graph.initializers()) {
      if (!candidate(v)) continue;
      const auto& d = v->constant()->dims();
      groups[{static_cast<int>(v->constant()->dtype()), std::min(d[0], d[1]), std::max(d[0], d[1])}].push_back(v);
    }
    int64_t tied = 0, bytes = 0;
    std::vector<ir::Value*> dropped;
    for (auto& [key, values] : groups) {
      if (values.size() < 2) continue;
      std::vector<bool> gone(values.size(), false);
      for (size_t i = 0; i < values.size(); ++i) {
        for (size_t j = i + 1; j < values.size() && !gone[i]; ++j) {
          if (gone[j] || !isTransposeOf(*values[i]->constant(), *values[j]->constant())) continue;
          // Keep the layout a Gather reads (the embedding); the other becomes its Transpose.
          const bool keepJ = readByGather(values[j]) && !readByGather(values[i]);
          ir::Value* keep = keepJ ? values[j] : values[i];
          ir::Value* copy = keepJ ? values[i] : values[j];
          ir::Node* first = graph.numNodes() > 0 ? graph.nodes().front() : nullptr;
          ir::Node* transpose = graph.addNode("Transpose", {keep}, {copy->name() + "_tied"},
                                              graph.uniqueNodeName(copy->name() + "_tied_Transpose"), "", first);
          transpose->setAttribute(ir::Attribute::makeInts("perm", {1, 0}));
          transpose->output(0)->mutableType() = copy->type();
          graph.replaceAllUsesWith(copy, transpose->output(0));
          bytes += static_cast<int64_t>(copy->constant()->byteSize());
          gone[keepJ ? i : j] = true;
          dropped.push_back(copy);
          ++tied;
          ctx.note("tie-transposed-weights: '" + copy->name() + "' is the transpose of '" + keep->name() +
                   "'; it now reads Transpose('" + keep->name() + "') (" + std::to_string(copy->constant()->byteSize() >> 20) +
                   " MiB less)");
        }
      }
    }
    for (ir::Value* v : dropped) graph.removeInitializer(v);
    graph.eraseValues(dropped);
    ctx.stats().rewrites += tied;
    ctx.stats().counters["bytes-saved"] += bytes;
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeTieTransposedWeights(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<TieTransposedWeights>());
}

}  // namespace whittle::passes
