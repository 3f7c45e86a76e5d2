#pragma once
// Internal to passes/: the bodies of control-flow nodes (If branches, Loop and Scan bodies, at
// any depth) decoded into IR graphs for a pass that rewrites inside them (quantize-int8,
// quantize-dynamic), and stored back afterwards.
//
// A decoded body's inputs are its formal inputs, then one typeless input per name it reads from
// enclosing scopes (onnx_io::Subgraph). A capture whose name is a float constant of an
// enclosing graph (an initializer or a Constant's output, as a branch's MatMul reading the main
// graph's weight) is listed in `outerConstants`, so that a quantizer can quantize it inside the
// body; the enclosing graph keeps its float copy, which the node still lists among its implicit
// inputs. So is a Loop's carried state that the body hands back unchanged and whose initial value
// is such a constant (tf2onnx's LSTM kernels): it is that constant on every iteration.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::passes {

struct DecodedBody {
  ir::Node* holder = nullptr;  ///< the control-flow node, in the enclosing graph
  std::string attribute;       ///< "then_branch", "body", ...
  onnx_io::Subgraph sub;
  int parent = -1;  ///< index of the enclosing body in the list; -1: the main graph
  std::map<const ir::Value*, const ir::Tensor*> outerConstants;  ///< capture input -> constant
  std::set<std::string> decodedNames;  ///< the names its values had when decoded

  ir::Graph& graph() { return *sub.graph; }
  /// "If 'gate' then_branch", for messages.
  std::string label() const { return holder->describe() + " " + attribute; }
};

/// Every graph attribute inside `graph`, at any depth, decoded; enclosing bodies come before the
/// bodies they hold. Empty when there is none.
Expected<std::vector<std::unique_ptr<DecodedBody>>> decodeBodies(ir::Graph& graph);

/// Stores every body back into its holder's attribute, inner bodies first. A value a rewrite
/// added to a body whose name an enclosing graph (`main`, then the enclosing bodies) also
/// defines (a rewrite made the same name in both) is renamed first: ONNX names are unique
/// across nested scopes.
Status storeBodies(std::vector<std::unique_ptr<DecodedBody>>& bodies, ir::Graph& main);

/// The constant behind `v` in a graph of `bodies` (or the main graph: `body` null): constantOf,
/// else the enclosing constant a capture names.
const ir::Tensor* constantIn(const ir::Value* v, const DecodedBody* body);

}  // namespace whittle::passes
