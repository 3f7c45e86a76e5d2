#include "subgraph_bodies.h"

#include <functional>

#include "whittle/ir/match.h"

namespace whittle::passes {
namespace {

/// The float constant `v` holds (an initializer or a Constant's output), or null.
const ir::Tensor* floatConstant(const ir::Value* v) {
  if (v == nullptr || (v->isGraphInput() && !v->isInitializer())) return nullptr;
  const ir::Tensor* t = ir::constantOf(v);
  return t != nullptr && t->dtype() == ir::DataType::kFloat ? t : nullptr;
}

/// The float constant named `name` in `graph`, or null.
const ir::Tensor* namedConstant(const ir::Graph& graph, const std::string& name) {
  return floatConstant(graph.findValue(name));
}

/// A Loop's carried state that its body hands back unchanged holds the initial value on every
/// iteration (tf2onnx passes each LSTM's kernels into its while-loop this way); where that value
/// is a float constant of the enclosing scope (`enclosing`: null for the main graph), the body
/// may treat the state as that constant.
void constantLoopState(DecodedBody& body, const DecodedBody* enclosing) {
  const ir::Node& loop = *body.holder;
  if (loop.opType() != "Loop" || !ir::isDefaultDomain(loop) || body.attribute != "body") return;
  const ir::Graph& g = body.graph();
  // Loop inputs (M, cond, v...) are the body's formal inputs (iteration, cond, v...) index for
  // index; the body's outputs are (cond, v..., scan outputs...).
  for (size_t k = 2; k < body.sub.numFormalInputs && k < loop.numInputs() && k - 1 < g.outputs().size(); ++k) {
    const ir::Value* state = g.inputs()[k];
    if (g.outputs()[k - 1] != state) continue;
    const ir::Value* initial = loop.input(k);
    const ir::Tensor* t = floatConstant(initial);
    if (t == nullptr && enclosing != nullptr) {
      auto captured = enclosing->outerConstants.find(initial);
      if (captured != enclosing->outerConstants.end()) t = captured->second;
    }
    if (t != nullptr) body.outerConstants[state] = t;
  }
}

}  // namespace

Expected<std::vector<std::unique_ptr<DecodedBody>>> decodeBodies(ir::Graph& graph) {
  std::vector<std::unique_ptr<DecodedBody>> bodies;
  std::function<Status(ir::Graph&, int)> walk = [&](ir::Graph& g, int parent) -> Status {
    for (ir::Node* n : g.nodes()) {
      if (!n->hasSubgraphs()) continue;
      for (const ir::Attribute& a : n->attributes()) {
        if (a.kind != ir::Attribute::Kind::kGraph) continue;
        auto body = std::make_unique<DecodedBody>();
        body->holder = n;
        body->attribute = a.name;
        body->parent = parent;
        WH_ASSIGN_OR_RETURN(body->sub, onnx_io::loadSubgraph(a, n->describe()));
        for (const ir::Value* v : body->sub.graph->values()) body->decodedNames.insert(v->name());
        for (size_t j = 0; j < body->sub.captures.size(); ++j) {
          const ir::Value* input = body->sub.graph->inputs()[body->sub.numFormalInputs + j];
          // The nearest enclosing scope that defines the name decides.
          // The enclosing scope that defines the name decides; where that scope captures it
          // in turn, what the capture resolved to.
          const ir::Tensor* t = nullptr;
          if (parent < 0) {
            t = namedConstant(graph, input->name());
          } else {
            DecodedBody& enclosing = *bodies[static_cast<size_t>(parent)];
            const ir::Value* v = enclosing.graph().findValue(input->name());
            auto captured = v != nullptr ? enclosing.outerConstants.find(v) : enclosing.outerConstants.end();
            t = captured != enclosing.outerConstants.end() ? captured->second
                                                           : namedConstant(enclosing.graph(), input->name());
          }
          if (t != nullptr) body->outerConstants[input] = t;
        }
        constantLoopState(*body, parent < 0 ? nullptr : bodies[static_cast<size_t>(parent)].get());
        bodies.push_back(std::move(body));
        const int index = static_cast<int>(bodies.size()) - 1;
        WH_RETURN_IF_ERROR(walk(bodies.back()->graph(), index));
      }
    }
    return Status::ok();
  };
  WH_RETURN_IF_ERROR(walk(graph, -1));
  return bodies;
}

namespace {

/// Drops from the implicit inputs of the control-flow nodes in `scope` every value that none of
/// their bodies reads any more (a rewrite gave the body its own int8 copy of a captured
/// weight): the float original can then go, where nothing else reads it.
void pruneCaptures(std::vector<std::unique_ptr<DecodedBody>>& bodies, const ir::Graph& scope) {
  std::map<ir::Node*, std::set<std::string>> read;
  for (const auto& b : bodies) {
    if (&b->holder->graph() != &scope) continue;
    std::set<std::string>& names = read[b->holder];
    for (size_t j = 0; j < b->sub.captures.size(); ++j) {
      const ir::Value* input = b->sub.graph->inputs()[b->sub.numFormalInputs + j];
      if (input->hasUses() || input->isGraphOutput() || input->hasImplicitUses()) names.insert(input->name());
    }
  }
  for (auto& [holder, names] : read) {
    const std::vector<ir::Value*> captured = holder->implicitInputs();
    for (ir::Value* v : captured) {
      if (!names.contains(v->name())) holder->removeImplicitInput(v);
    }
  }
}

}  // namespace

Status storeBodies(std::vector<std::unique_ptr<DecodedBody>>& bodies, ir::Graph& main) {
  for (auto it = bodies.rbegin(); it != bodies.rend(); ++it) {
    DecodedBody& body = **it;
    pruneCaptures(bodies, body.graph());  // the control-flow nodes inside it, whose bodies are stored
    std::set<std::string> enclosing;
    for (int p = body.parent;; p = bodies[static_cast<size_t>(p)]->parent) {
      const ir::Graph& scope = p < 0 ? main : bodies[static_cast<size_t>(p)]->graph();
      for (const ir::Value* v : scope.values()) enclosing.insert(v->name());
      if (p < 0) break;
    }
    ir::Graph& g = body.graph();
    for (ir::Value* v : g.values()) {
      if (v->isGraphInput() || body.decodedNames.contains(v->name()) || !enclosing.contains(v->name())) continue;
      std::string name = v->name() + "_" + body.attribute;
      for (int k = 1; enclosing.contains(name) || g.findValue(name) != nullptr; ++k) {
        name = v->name() + "_" + body.attribute + "_" + std::to_string(k);
      }
      WH_RETURN_IF_ERROR(g.renameValue(v, name));
    }
    ir::Attribute* a = nullptr;
    for (const ir::Attribute& candidate : body.holder->attributes()) {
      if (candidate.name == body.attribute) a = const_cast<ir::Attribute*>(&candidate);
    }
    if (a == nullptr) return internalError(body.label() + ": the attribute is gone");
    ir::Attribute stored = *a;
    WH_RETURN_IF_ERROR(onnx_io::storeSubgraph(body.sub, stored).withContext(body.label()));
    body.holder->setAttribute(std::move(stored));
  }
  pruneCaptures(bodies, main);
  return Status::ok();
}

const ir::Tensor* constantIn(const ir::Value* v, const DecodedBody* body) {
  if (v == nullptr) return nullptr;
  if (const ir::Tensor* t = ir::constantOf(v)) return t;
  if (body == nullptr) return nullptr;
  auto it = body->outerConstants.find(v);
  return it == body->outerConstants.end() ? nullptr : it->second;
}

}  // namespace whittle::passes
