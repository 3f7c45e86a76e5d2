#include "whittle/ir/verifier.h"

#include <algorithm>
#include <unordered_set>

namespace whittle::ir {

Status verify(const Graph& graph) {
  std::unordered_set<const Value*> defined;
  std::unordered_set<std::string> names;
  for (const Value* v : graph.values()) {
    if (!names.insert(v->name()).second) return internalError("two values are named '" + v->name() + "'");
    if (graph.findValue(v->name()) != v) return internalError("value '" + v->name() + "' is missing from the name index");
    if (&v->graph() != &graph) return internalError("value '" + v->name() + "' belongs to another graph");
    if (v->isGraphInput() || v->isInitializer()) {
      if (v->producer() != nullptr) {
        return invalidInput("value '" + v->name() + "' is a graph input or initializer and also produced by " +
                            v->producer()->describe());
      }
      defined.insert(v);
    }
    for (const Value::Use& use : v->uses()) {
      const Node& user = *use.user;
      Value* slot = use.implicit() ? (static_cast<size_t>(-use.index - 1) < user.implicitInputs().size()
                                          ? user.implicitInputs()[static_cast<size_t>(-use.index - 1)]
                                          : nullptr)
                                    : user.input(static_cast<size_t>(use.index));
      if (slot != v) return internalError("use list of '" + v->name() + "' names " + user.describe() + " wrongly");
    }
  }
  for (const Node* node : graph.nodes()) {
    auto checkInput = [&](const Value* in, int32_t index) -> Status {
      if (in == nullptr) return Status::ok();
      if (&in->graph() != &graph) {
        return internalError(node->describe() + ": input '" + in->name() + "' belongs to another graph");
      }
      if (!defined.contains(in)) {
        if (in->producer() == nullptr) {
          return invalidInput(node->describe() + ": input '" + in->name() +
                              "' is produced by no node and is not a graph input or initializer");
        }
        return invalidInput(node->describe() + ": input '" + in->name() + "' is used before " +
                            in->producer()->describe() + " produces it (nodes not in topological order)");
      }
      const auto& uses = in->uses();
      if (std::find(uses.begin(), uses.end(), Value::Use{const_cast<Node*>(node), index}) == uses.end()) {
        return internalError(node->describe() + ": use of '" + in->name() + "' is missing from its use list");
      }
      return Status::ok();
    };
    for (size_t i = 0; i < node->numInputs(); ++i) {
      WH_RETURN_IF_ERROR(checkInput(node->input(i), static_cast<int32_t>(i)));
    }
    for (size_t k = 0; k < node->implicitInputs().size(); ++k) {
      WH_RETURN_IF_ERROR(checkInput(node->implicitInputs()[k], static_cast<int32_t>(-static_cast<int32_t>(k) - 1)));
    }
    for (size_t i = 0; i < node->numOutputs(); ++i) {
      const Value* out = node->output(i);
      if (out == nullptr) continue;
      if (out->producer() != node || out->producerOutputIndex() != static_cast<int32_t>(i)) {
        return invalidInput(node->describe() + ": output '" + out->name() + "' is also produced by " +
                            (out->producer() ? out->producer()->describe() : std::string("a graph input")));
      }
      if (!defined.insert(out).second) {
        return invalidInput(node->describe() + ": output '" + out->name() + "' is defined twice");
      }
    }
  }
  for (const Value* out : graph.outputs()) {
    if (out == nullptr) return internalError("graph has an empty output slot");
    if (!defined.contains(out)) {
      return invalidInput("graph output '" + out->name() + "' is produced by no node and is not a graph input");
    }
  }
  return Status::ok();
}

}  // namespace whittle::ir
