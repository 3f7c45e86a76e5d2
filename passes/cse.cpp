// cse
// Before: y1 = Op(a, b){attrs}; y2 = Op(a, b){attrs}       (same op, inputs, attributes)
// After:  y1 = Op(a, b){attrs}; uses of y2 read y1
// Also merges initializers with the same dtype, dims and bytes, of any size: the shape and
// scale constants exporters repeat, and a weight written twice.
// Requires: no subgraphs; the op is deterministic (not Random*); graph outputs keep their
// names (canForward).
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "pass_factories.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::passes {
namespace {

bool isDeterministic(const ir::Node& n) {
  const std::string& op = n.opType();
  return op.rfind("Random", 0) != 0 && op != "Multinomial" && op != "Bernoulli" && !n.hasSubgraphs();
}

std::string attributeKey(const ir::Attribute& a) {
  std::string key = a.name + ":" + std::to_string(static_cast<int>(a.kind)) + ":";
  switch (a.kind) {
    case ir::Attribute::Kind::kInt: return key + std::to_string(a.i);
    case ir::Attribute::Kind::kFloat: {
      uint32_t bits;
      std::memcpy(&bits, &a.f, 4);
      return key + std::to_string(bits);
    }
    case ir::Attribute::Kind::kString: return key + a.s;
    case ir::Attribute::Kind::kInts: {
      for (int64_t v : a.ints) key += std::to_string(v) + ",";
      return key;
    }
    case ir::Attribute::Kind::kFloats: {
      for (float v : a.floats) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        key += std::to_string(bits) + ",";
      }
      return key;
    }
    case ir::Attribute::Kind::kStrings: {
      for (const auto& v : a.strings) key += std::to_string(v.size()) + ":" + v;
      return key;
    }
    case ir::Attribute::Kind::kTensor: {
      key += std::to_string(static_cast<int>(a.t.dtype())) + "[";
      for (int64_t d : a.t.dims()) key += std::to_string(d) + ",";
      key += "]";
      if (a.t.dtype() == ir::DataType::kString) {
        for (const auto& s : a.t.stringValues()) key += std::to_string(s.size()) + ":" + s;
      } else {
        key.append(reinterpret_cast<const char*>(a.t.rawData()), a.t.byteSize());
      }
      return key;
    }
    default: return key + a.opaque;  // opaque kinds compare by their serialized bytes
  }
}

std::string nodeKey(const ir::Node& n) {
  std::string key = n.domain() + "|" + n.opType() + "|" + std::to_string(n.numOutputs()) + "|";
  for (const ir::Value* in : n.inputs()) key += (in ? std::to_string(reinterpret_cast<uintptr_t>(in)) : "-") + ",";
  std::map<std::string, std::string> attrs;
  for (const ir::Attribute& a : n.attributes()) attrs[a.name] = attributeKey(a);
  for (const auto& [name, k] : attrs) key += "|" + k;
  return key;
}

class Cse final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    ir::Graph& graph = *model.graph;
    int64_t merged = mergeInitializers(graph);
    std::unordered_map<std::string, ir::Node*> seen;
    for (ir::Node* node : graph.nodes()) {
      if (!isDeterministic(*node)) continue;
      auto [it, inserted] = seen.emplace(nodeKey(*node), node);
      if (inserted) continue;
      ir::Node* keep = it->second;
      bool forwardable = true;
      for (size_t i = 0; i < node->numOutputs(); ++i) {
        ir::Value* dup = node->output(i);
        ir::Value* orig = keep->output(i);
        if (dup == nullptr) continue;
        if (orig == nullptr || !canForward(dup, orig)) forwardable = false;
      }
      if (!forwardable) continue;
      for (size_t i = 0; i < node->numOutputs(); ++i) {
        if (node->output(i) != nullptr) graph.replaceAllUsesWith(node->output(i), keep->output(i));
      }
      ++merged;
    }
    removeDeadNodes(graph);
    ctx.stats().rewrites += merged;
    return Status::ok();
  }

 private:
  /// dtype, dims and a 64-bit hash of the bytes: the key under which equal initializers meet
  /// (the bytes themselves decide, so a hash collision only costs a comparison).
  static std::string initializerKey(const ir::Tensor& t) {
    std::string key = std::to_string(static_cast<int>(t.dtype())) + "[";
    for (int64_t d : t.dims()) key += std::to_string(d) + ",";
    uint64_t h = 1469598103934665603ull;
    const std::byte* p = t.rawData();
    const size_t n = t.byteSize();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; ++i) h = (h ^ static_cast<uint64_t>(p[i])) * 1099511628211ull;
    return key + "]" + std::to_string(h);
  }

  static int64_t mergeInitializers(ir::Graph& graph) {
    std::unordered_map<std::string, std::vector<ir::Value*>> seen;
    int64_t merged = 0;
    for (ir::Value* v : std::vector<ir::Value*>(graph.initializers())) {
      const ir::Tensor& t = *v->constant();
      if (v->isGraphInput() || v->isGraphOutput() || t.dtype() == ir::DataType::kString) continue;
      std::vector<ir::Value*>& same = seen[initializerKey(t)];
      ir::Value* match = nullptr;
      for (ir::Value* s : same) {
        if (std::memcmp(s->constant()->rawData(), t.rawData(), t.byteSize()) == 0) {
          match = s;
          break;
        }
      }
      if (match == nullptr) {
        same.push_back(v);
        continue;
      }
      if (v->hasImplicitUses()) continue;
      graph.replaceAllUsesWith(v, match);
      ++merged;
    }
    return merged;
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeCse(const NoOptions&) { return std::unique_ptr<Pass>(std::make_unique<Cse>()); }

}  // namespace whittle::passes
