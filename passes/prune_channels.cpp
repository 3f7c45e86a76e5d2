// prune-channels: structured pruning that removes whole output channels of Convs.
//
// Before: y = Conv(x, W, b) -> [BatchNormalization | Relu | Clip | pooling | depthwise Conv |
//             Concat ...] -> Conv(., W2, b2)
// After:  the same chain with the channels in R removed everywhere they flow:
//   W'  = W[keep]          b' = b[keep]           keep = channels not in R
//   BatchNormalization scale/bias/mean/var [keep], depthwise Conv weight/bias [keep] (group
//   shrinks), Concat carries the kept channels at their offset, and every consuming Conv
//   (or MatMul/Gemm after a Flatten of a 1x1 map) loses the matching input channels:
//   W2' = W2[:, keep].
//   R = the floor(ratio * O) output channels of W with the smallest L1 (or L2) norm.
// A Conv is pruned only when every path from its output reaches such consumers through ops
// that carry channels one to one (Add, Softmax, graph outputs, anything else: left alone),
// so the model stays valid and gets smaller: MACs and parameters drop. Through ops with
// f(0) = 0 (Relu, Clip with min <= 0, pooling) the result equals the model with those
// channels zeroed; BatchNormalization turns a zeroed channel into a constant, which is dropped.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>

#include "pass_factories.h"
#include "prune_util.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::passes {
namespace {

// Ops that carry channel c of their input 0 to channel c of output 0 and need no change.
bool passesChannels(const ir::Node& n) {
  static const std::set<std::string, std::less<>> kOps = {"Relu", "LeakyRelu", "Tanh", "HardSwish", "Identity",
                                                          "Elu", "Selu", "Dropout", "MaxPool", "AveragePool",
                                                          "GlobalAveragePool", "GlobalMaxPool", "LpPool", "Clip"};
  if (!kOps.contains(n.opType())) return false;
  for (size_t o = 1; o < n.numOutputs(); ++o) {
    if (n.output(o) != nullptr && (n.output(o)->hasUses() || n.output(o)->isGraphOutput())) return false;
  }
  if (n.opType() == "Clip") {
    for (size_t i = 1; i < n.numInputs(); ++i) {
      if (n.input(i) == nullptr) continue;
      const ir::Tensor* t = constantOf(n.input(i));
      if (t == nullptr || t->numel() != 1) return false;
    }
  }
  return true;
}

int64_t channelsOf(const ir::Value* v) {
  if (!v->type().shape || v->type().shape->size() < 2) return -1;
  const ir::Dim& d = (*v->type().shape)[1];
  return d.isKnown() ? d.value : -1;
}

bool isDepthwise(const ir::Node& n) {
  if (n.opType() != "Conv") return false;
  const ir::Tensor* w = constantOf(n.input(1));
  return w != nullptr && w->rank() >= 3 && w->dims()[1] == 1 && n.attrInt("group", 1) == w->dims()[0] && w->dims()[0] > 1;
}

// One step of the region a pruned Conv's channels flow through.
struct RegionEdit {
  enum class Kind { kPerChannel, kDepthwise, kConsumerConv, kConsumerMatMul, kConsumerGemmT, kShape };
  Kind kind;
  ir::Node* node;
  int64_t offset;     // where the pruned Conv's channels start in this node's channel axis
  ir::Value* value;   // the value whose channel dim shrinks (kShape) or that the node reads
};

// Follows `v` (carrying the Conv's O channels at `offset`, `channels` in all) to every user;
// false when some path cannot be pruned consistently.
bool collectRegion(ir::Value* v, int64_t offset, int64_t channels, std::vector<RegionEdit>& edits,
                   std::set<const ir::Node*>& visited, bool flat) {
  if (v->isGraphOutput() || v->hasImplicitUses()) return false;
  edits.push_back({RegionEdit::Kind::kShape, nullptr, offset, v});
  for (const ir::Value::Use& u : v->uses()) {
    ir::Node* n = u.user;
    if (!ir::isDefaultDomain(*n)) return false;
    const std::string& op = n->opType();
    if (!flat && op == "Conv" && u.index == 0) {
      const ir::Tensor* w = constantOf(n->input(1));
      if (w == nullptr || w->dtype() != ir::DataType::kFloat) return false;
      if (isDepthwise(*n)) {
        if (w->dims()[0] != channels || !visited.insert(n).second) return false;
        edits.push_back({RegionEdit::Kind::kDepthwise, n, offset, v});
        if (!collectRegion(n->output(0), offset, channels, edits, visited, false)) return false;
        continue;
      }
      if (n->attrInt("group", 1) != 1 || w->dims()[1] != channels) return false;
      edits.push_back({RegionEdit::Kind::kConsumerConv, n, offset, v});
      continue;
    }
    if (flat && (op == "MatMul" || op == "Gemm") && u.index == 0) {
      const ir::Tensor* w = constantOf(n->input(1));
      if (w == nullptr || w->dtype() != ir::DataType::kFloat || w->rank() != 2) return false;
      if (op == "Gemm" && n->attrInt("transA", 0) != 0) return false;
      bool transposed = op == "Gemm" && n->attrInt("transB", 0) != 0;
      if (w->dims()[transposed ? 1 : 0] != channels) return false;
      edits.push_back({transposed ? RegionEdit::Kind::kConsumerGemmT : RegionEdit::Kind::kConsumerMatMul, n, offset, v});
      continue;
    }
    if (!flat && op == "Flatten" && u.index == 0 && n->attrInt("axis", 1) == 1) {
      auto dims = v->type().staticDims();
      if (!dims || dims->size() < 2) return false;
      for (size_t i = 2; i < dims->size(); ++i) {
        if ((*dims)[i] != 1) return false;
      }
      if (!visited.insert(n).second) return false;
      if (!collectRegion(n->output(0), offset, channels, edits, visited, true)) return false;
      continue;
    }
    if (flat) return false;
    if (op == "BatchNormalization" && u.index == 0) {
      for (size_t i = 1; i < 5; ++i) {
        const ir::Tensor* t = constantOf(n->input(i));
        if (t == nullptr || t->rank() != 1 || t->dims()[0] != channels) return false;
      }
      if (n->attrInt("training_mode", 0) != 0 || !visited.insert(n).second) return false;
      edits.push_back({RegionEdit::Kind::kPerChannel, n, offset, v});
      if (!collectRegion(n->output(0), offset, channels, edits, visited, false)) return false;
      continue;
    }
    if (passesChannels(*n) && u.index == 0) {
      if (!visited.insert(n).second) return false;
      if (!collectRegion(n->output(0), offset, channels, edits, visited, false)) return false;
      continue;
    }
    if (op == "Concat" && n->attrInt("axis", 0) == 1) {
      // The Conv's channels sit after the channels of the inputs before this one.
      int64_t before = 0, total = 0;
      for (size_t i = 0; i < n->numInputs(); ++i) {
        int64_t c = channelsOf(n->input(i));
        if (c < 0) return false;
        if (static_cast<int32_t>(i) < u.index) before += c;
        total += c;
      }
      for (size_t i = 0; i < n->numInputs(); ++i) {
        if (n->input(i) == v && static_cast<int32_t>(i) != u.index) return false;  // the same value twice
      }
      if (!visited.insert(n).second) return false;
      if (!collectRegion(n->output(0), before + offset, total, edits, visited, false)) return false;
      continue;
    }
    return false;
  }
  return true;
}

// Keeps the entries [offset + k for k in keep] of axis `axis` of `t`, the rest of the axis
// (outside [offset, offset + width)) untouched.
ir::Tensor sliceAxis(const ir::Tensor& t, int64_t axis, int64_t offset, int64_t width, const std::vector<int64_t>& keep) {
  std::vector<int64_t> dims = t.dims();
  const int64_t n = dims[static_cast<size_t>(axis)];
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < offset; ++i) rows.push_back(i);
  for (int64_t k : keep) rows.push_back(offset + k);
  for (int64_t i = offset + width; i < n; ++i) rows.push_back(i);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= dims[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
  dims[static_cast<size_t>(axis)] = static_cast<int64_t>(rows.size());
  ir::Tensor out(t.dtype(), dims);
  const size_t es = ir::elementSize(t.dtype());
  const std::byte* src = t.rawData();
  std::byte* dst = out.mutableRawData();
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t r = 0; r < rows.size(); ++r) {
      std::memcpy(dst + ((o * static_cast<int64_t>(rows.size()) + static_cast<int64_t>(r)) * inner) * es,
                  src + ((o * n + rows[r]) * inner) * es, static_cast<size_t>(inner) * es);
    }
  }
  return out;
}

// Gives node input `i` the tensor: in place when the node is the value's only user.
void setInputTensor(ir::Graph& graph, ir::Node& node, size_t i, ir::Tensor t) {
  ir::Value* old = node.input(i);
  if (old->isInitializer() && old->uses().size() == 1 && !old->isGraphOutput()) {
    old->setConstant(std::move(t));
  } else {
    ir::Value* fresh = graph.addInitializer(graph.uniqueValueName(old->name() + "_pruned"), std::move(t));
    node.setInput(i, fresh);
  }
  ir::Value* now = node.input(i);
  now->mutableType().dtype = now->constant()->dtype();
  std::vector<ir::Dim> shape;
  for (int64_t d : now->constant()->dims()) shape.push_back(ir::Dim::known(d));
  now->mutableType().shape = shape;
}

class PruneChannels final : public Pass {
 public:
  PruneChannels(double ratio, bool l2) : ratio_(ratio), l2_(l2) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  double ratio_;
  bool l2_;
};

Status PruneChannels::run(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  (void)ir::inferShapes(model);
  int64_t layers = 0, removed = 0, skipped = 0;
  for (ir::Node* conv : graph.nodes()) {
    if (conv->opType() != "Conv" || !ir::isDefaultDomain(*conv) || conv->attrInt("group", 1) != 1) continue;
    const ir::Tensor* w = constantOf(conv->input(1));
    if (w == nullptr || w->dtype() != ir::DataType::kFloat || w->rank() < 3) continue;
    if (conv->input(1)->uses().size() != 1) continue;
    if (conv->input(2) != nullptr && constantOf(conv->input(2)) == nullptr) continue;
    const int64_t outC = w->dims()[0];
    const int64_t drop = static_cast<int64_t>(std::floor(ratio_ * static_cast<double>(outC)));
    if (drop <= 0 || drop >= outC) continue;
    std::vector<RegionEdit> edits;
    std::set<const ir::Node*> visited;
    if (!collectRegion(conv->output(0), 0, outC, edits, visited, false)) {
      ++skipped;
      continue;
    }
    // The channels to keep: largest norms, in their original order.
    const int64_t per = w->numel() / outC;
    std::span<const float> wv = w->values<float>();
    std::vector<double> norm(static_cast<size_t>(outC), 0.0);
    for (int64_t o = 0; o < outC; ++o) {
      for (int64_t k = 0; k < per; ++k) {
        double x = wv[static_cast<size_t>(o * per + k)];
        norm[static_cast<size_t>(o)] += l2_ ? x * x : std::fabs(x);
      }
    }
    std::vector<int64_t> order(static_cast<size_t>(outC));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[a] < norm[b]; });
    std::vector<int64_t> keep(order.begin() + drop, order.end());
    std::sort(keep.begin(), keep.end());

    setInputTensor(graph, *conv, 1, sliceAxis(*w, 0, 0, outC, keep));
    if (conv->input(2) != nullptr) setInputTensor(graph, *conv, 2, sliceAxis(*constantOf(conv->input(2)), 0, 0, outC, keep));
    for (const RegionEdit& e : edits) {
      ir::Node* n = e.node;
      switch (e.kind) {
        case RegionEdit::Kind::kShape: {
          auto& shape = e.value->mutableType().shape;
          if (shape && shape->size() >= 2 && (*shape)[1].isKnown()) (*shape)[1].value -= drop;
          break;
        }
        case RegionEdit::Kind::kPerChannel:
          for (size_t i = 1; i < 5; ++i) setInputTensor(graph, *n, i, sliceAxis(*constantOf(n->input(i)), 0, e.offset, outC, keep));
          break;
        case RegionEdit::Kind::kDepthwise: {
          setInputTensor(graph, *n, 1, sliceAxis(*constantOf(n->input(1)), 0, e.offset, outC, keep));
          if (n->input(2) != nullptr) setInputTensor(graph, *n, 2, sliceAxis(*constantOf(n->input(2)), 0, e.offset, outC, keep));
          n->setAttribute(ir::Attribute::makeInt("group", constantOf(n->input(1))->dims()[0]));
          break;
        }
        case RegionEdit::Kind::kConsumerConv:
          setInputTensor(graph, *n, 1, sliceAxis(*constantOf(n->input(1)), 1, e.offset, outC, keep));
          break;
        case RegionEdit::Kind::kConsumerMatMul:
          setInputTensor(graph, *n, 1, sliceAxis(*constantOf(n->input(1)), 0, e.offset, outC, keep));
          break;
        case RegionEdit::Kind::kConsumerGemmT:
          setInputTensor(graph, *n, 1, sliceAxis(*constantOf(n->input(1)), 1, e.offset, outC, keep));
          break;
      }
    }
    ++layers;
    removed += drop;
  }
  removeDeadNodes(graph);
  ctx.stats().rewrites = layers;
  ctx.stats().counters["layers-pruned"] = layers;
  ctx.stats().counters["layers-left"] = skipped;
  ctx.stats().counters["channels-removed"] = removed;
  if (skipped > 0) {
    ctx.note("prune-channels: " + std::to_string(skipped) +
             " Convs left whole: their channels reach an Add, a graph output or another op that cannot drop them consistently");
  }
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makePruneChannels(const PruneChannelsOptions& options) {
  return std::unique_ptr<Pass>(std::make_unique<PruneChannels>(options.ratio, options.norm == "l2"));
}

}  // namespace whittle::passes
