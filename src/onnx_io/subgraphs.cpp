// The nodes of subgraph attributes (include/whittle/onnx_io/subgraphs.h).
#include <onnx/onnx_pb.h>

#include "whittle/onnx_io/subgraphs.h"

namespace whittle::onnx_io {
namespace {

void collect(const onnx::GraphProto& graph, std::vector<SubgraphNode>& out) {
  for (const onnx::NodeProto& n : graph.node()) {
    out.push_back({n.domain(), n.op_type(), n.name()});
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.has_g()) collect(a.g(), out);
      for (const onnx::GraphProto& g : a.graphs()) collect(g, out);
    }
  }
}

}  // namespace

Expected<std::vector<SubgraphNode>> subgraphNodes(const ir::Attribute& attribute) {
  std::vector<SubgraphNode> out;
  if (attribute.kind != ir::Attribute::Kind::kGraph && attribute.kind != ir::Attribute::Kind::kGraphs) return out;
  onnx::AttributeProto proto;
  if (!proto.ParseFromString(attribute.opaque)) {
    return invalidInput("attribute '" + attribute.name + "': its serialized subgraph does not parse");
  }
  if (proto.has_g()) collect(proto.g(), out);
  for (const onnx::GraphProto& g : proto.graphs()) collect(g, out);
  return out;
}

}  // namespace whittle::onnx_io
