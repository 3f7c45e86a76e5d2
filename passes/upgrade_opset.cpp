// upgrade-opset{to=N}
// Before: a model importing default-domain opset F (7 <= F < N).
// After:  the same computation written for opset N: every node whose op changed its signature
//         or meaning between F and N is rewritten by the adapter of that change (attributes that
//         became inputs, changed defaults and modes, renamed or removed ops such as Upsample ->
//         Resize and Scatter -> ScatterElements, Softmax's 2-D coercion made explicit); changes
//         that only added types, or attributes whose default is the old behaviour, need nothing.
//         The opset import becomes N and the IR version at least what N needs.
// Requires: every default-domain node is an ONNX op of opsets 7..N (passes/opset_history.cpp)
//         and no change on its way is one without a faithful rewrite; subgraph bodies (If, Loop,
//         Scan) hold only ops that need no rewrite. Otherwise an error names the node and the
//         change, and the model is unchanged (the conversion runs on a copy).
// Why our own: libonnx's version_converter (1.12 here) adapts Resize 10 -> 11 without setting
// the opset-10 coordinate mode (so results move by half a pixel), treats Hardmax 12 -> 13 as
// compatible, needs input ranks for Resize's roi, and converts through its own IR, which drops
// what whittle's IR round-trips.
#include "whittle/passes/upgrade_opset.h"

#include <algorithm>

#include "opset_history.h"
#include "pass_factories.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/onnx_io/subgraphs.h"

namespace whittle::passes {

static_assert(kNewestOpset == 21,
              "raising onnx_io::kMaxOpset: classify every schema change up to it in passes/opset_history.cpp first");

namespace {

bool isDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

// The IR version a model importing `opset` needs (onnx/helper.py VERSION_TABLE), and at least 4
// so that initializers need not be graph inputs.
int64_t irVersionFor(int64_t opset) {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  if (opset >= 12) return 7;
  if (opset == 11) return 6;
  if (opset == 10) return 5;
  return 4;
}

std::string unknownOp(const std::string& op, int64_t from, int64_t to) {
  return op + " is not an ONNX operator of opsets " + std::to_string(from) + " to " + std::to_string(to) +
         " (experimental ops were removed in ONNX 1.5), so its meaning at opset " + std::to_string(to) + " is unknown";
}

// Checks that nothing in the subgraphs of `node` would need a rewrite between from and to.
Status checkSubgraphs(const ir::Node& node, int64_t from, int64_t to) {
  for (const ir::Attribute& a : node.attributes()) {
    WH_ASSIGN_OR_RETURN(std::vector<onnx_io::SubgraphNode> inner, onnx_io::subgraphNodes(a));
    for (const onnx_io::SubgraphNode& n : inner) {
      if (!isDefaultDomain(n.domain)) continue;
      std::string where = "upgrade-opset: " + node.describe() + ": node " + n.opType + " '" + n.name + "' in its body";
      const opset::OpHistory* h = opset::findHistory(n.opType);
      if (h == nullptr) return unimplemented(where + ": " + unknownOp(n.opType, from, to));
      for (const opset::Change& c : h->changes) {
        if (c.version <= from || c.version > to) continue;
        if (c.kind == opset::ChangeKind::kAdapter || c.kind == opset::ChangeKind::kRefused) {
          return unimplemented(where + " changed at opset " + std::to_string(c.version) + " (" + std::string(c.what) +
                               "), and whittle does not rewrite inside subgraphs");
        }
      }
    }
  }
  return Status::ok();
}

// What an adapter may change in place: inputs and attribute values.
std::string signature(const ir::Node& n) {
  std::string out;
  for (const ir::Value* v : n.inputs()) out += (v != nullptr ? v->name() : "") + ",";
  for (const ir::Attribute& a : n.attributes()) {
    out += ";" + a.name + "=" + std::to_string(a.i) + "/" + std::to_string(a.f) + "/" + a.s + "/";
    for (int64_t i : a.ints) out += std::to_string(i) + " ";
    for (float f : a.floats) out += std::to_string(f) + " ";
  }
  return out;
}

// Carries one node from the form of opset `version` up to `to`, change by change.
Status carry(ir::Node* node, int64_t version, opset::Upgrade& up, OpsetUpgrade& result) {
  for (;;) {
    const opset::OpHistory* h = opset::findHistory(node->opType());
    if (h == nullptr) {
      return unimplemented("upgrade-opset: " + node->describe() + ": " + unknownOp(node->opType(), up.from(), up.to()));
    }
    auto next = std::find_if(h->changes.begin(), h->changes.end(),
                             [&](const opset::Change& c) { return c.version > version && c.version <= up.to(); });
    if (next == h->changes.end()) return Status::ok();
    up.setStep(version, next->version);
    if (next->kind == opset::ChangeKind::kRefused) return up.refuse(*node, std::string(next->what));
    if (next->kind == opset::ChangeKind::kAdapter) {
      std::string op = node->opType();
      std::string before = signature(*node);
      up.beginAdapter(node);
      WH_RETURN_IF_ERROR(next->adapter(*node, up));
      if (up.currentErased()) {
        ++result.adapted[op];
        return Status::ok();  // its replacement nodes are pending
      }
      if (signature(*node) != before) ++result.adapted[op];
    }
    version = next->version;
  }
}

}  // namespace

int64_t OpsetUpgrade::adaptedCount() const {
  int64_t n = 0;
  for (const auto& [op, count] : adapted) n += count;
  return n;
}

std::string OpsetUpgrade::summary() const {
  std::string out = "opset " + std::to_string(from) + " -> " + std::to_string(to) + ": ";
  if (adapted.empty()) return out + "no node needed a rewrite";
  std::string list;
  for (const auto& [op, count] : adapted) list += (list.empty() ? "" : ", ") + op + " " + std::to_string(count);
  return out + list + " rewritten";
}

Expected<OpsetUpgrade> upgradeOpset(ir::Model& model, int64_t to) {
  if (to < onnx_io::kMinOpset || to > kNewestOpset) {
    return invalidInput("upgrade-opset: to=" + std::to_string(to) + ": whittle converts to opsets " +
                        std::to_string(onnx_io::kMinOpset) + " to " + std::to_string(kNewestOpset));
  }
  OpsetUpgrade result;
  result.from = model.opsetVersion("");
  result.to = std::max(to, result.from);
  if (result.from >= to) return result;
  if (result.from < onnx_io::kMinOpset) {
    return unimplemented("upgrade-opset: the model imports opset " + std::to_string(result.from) +
                         "; whittle converts from opset " + std::to_string(onnx_io::kMinOpset) + " on");
  }
  ir::Model copy = model.clone();
  ir::Graph& graph = *copy.graph;
  ir::inferShapes(copy);  // element types and ranks for the adapters
  opset::Upgrade up(graph, result.from, to);
  for (ir::Node* n : graph.nodes()) {
    if (!isDefaultDomain(n->domain())) continue;
    if (n->hasSubgraphs()) WH_RETURN_IF_ERROR(checkSubgraphs(*n, result.from, to));
    up.pending.emplace_back(n, result.from);
  }
  // Adapters erase only the node they adapt, so every pending node is alive when its turn comes.
  for (size_t i = 0; i < up.pending.size(); ++i) {
    auto [node, version] = up.pending[i];
    WH_RETURN_IF_ERROR(carry(node, version, up, result));
  }
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  copy.setOpsetVersion("", to);
  copy.irVersion = std::max(copy.irVersion, irVersionFor(to));
  model = std::move(copy);
  return result;
}

namespace {

class UpgradeOpset final : public Pass {
 public:
  explicit UpgradeOpset(int64_t to) : to_(to) {}
  Status run(ir::Model& model, PassContext& ctx) override {
    WH_ASSIGN_OR_RETURN(OpsetUpgrade done, upgradeOpset(model, to_));
    ctx.stats().rewrites += done.adaptedCount();
    for (const auto& [op, count] : done.adapted) ctx.stats().counters["adapted-" + op] += count;
    if (done.from < to_) ctx.note("upgrade-opset: " + done.summary());
    return Status::ok();
  }

 private:
  int64_t to_;
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeUpgradeOpset(const UpgradeOpsetOptions& options) {
  return std::unique_ptr<Pass>(std::make_unique<UpgradeOpset>(options.to));
}

}  // namespace whittle::passes
