#include "runtime/lowering_util.h"

#include "whittle/common/status.h"

namespace whittle::runtime {

const ir::Value::Use* onlyUse(const ir::Value* v) {
  return v->uses().size() == 1 && !v->uses()[0].implicit() ? &v->uses()[0] : nullptr;
}

ir::Node* replaceChain(ir::Graph& graph, const std::vector<ir::Node*>& old, ir::Value* finalOut,
                       const std::string& opType, const std::string& domain, const std::string& name,
                       const std::vector<ir::Value*>& inputs, std::vector<ir::Attribute> attrs) {
  std::string finalName = finalOut->name();
  WH_CHECK(graph.renameValue(finalOut, graph.uniqueValueName(finalName + "_lowered")).isOk());
  ir::Node* node = graph.addNode(opType, inputs, {finalName}, name, domain, old.back());
  ir::Value* out = node->output(0);
  out->mutableType() = finalOut->type();
  out->setHasValueInfo(finalOut->hasValueInfo());
  out->setDocString(finalOut->docString());
  for (ir::Attribute& a : attrs) node->setAttribute(std::move(a));
  std::vector<ir::Value::Use> uses = finalOut->uses();
  for (const ir::Value::Use& use : uses) use.user->replaceInput(finalOut, out);
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    if (graph.outputs()[i] == finalOut) graph.setOutput(i, out);
  }
  for (auto it = old.rbegin(); it != old.rend(); ++it) graph.eraseNode(*it);
  return node;
}

}  // namespace whittle::runtime
